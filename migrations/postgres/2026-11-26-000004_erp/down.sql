DROP TABLE erp_outbox;
DROP TABLE erp_event_head;
DROP TABLE erp_events;
DROP TABLE erp_sales;
DROP INDEX tenants_by_erp_customer_number;
ALTER TABLE tenants DROP COLUMN erp_customer_number;
