-- Who, of the manufacturer's staff, allowed a pairing that rests on a staff grant (an actor such
-- as `user:7`). The grant itself is used up by the pairing; its author stays on the pairing, so
-- the device's history can name them.
ALTER TABLE pairings ADD COLUMN granted_by TEXT;
