DROP TABLE pairing_grants;
DROP TABLE disputes;
DROP TABLE pairings;
