DROP TABLE oauth_refusals;
