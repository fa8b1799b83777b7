ALTER TABLE pairings DROP COLUMN granted_by;
