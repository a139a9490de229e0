-- When a receipt arrived. A receipt that no message or message part claims for a minute
-- (another system's, or a submit whose record was lost) is looked at again only every hour,
-- its `due_at` moved each time; `received_at` keeps its age, for dropping it after a week.
-- Rows from before stay NULL and count from their `due_at` until first moved.
ALTER TABLE carrier_receipts ADD COLUMN received_at BIGINT;
