ALTER TABLE refresh_families DROP COLUMN generation;
