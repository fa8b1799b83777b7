DROP TABLE telemetry_readings;
