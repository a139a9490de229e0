-- A keyword auto-reply (the STOP confirmation) goes to a recipient who has just opted out:
-- the dispatcher, which checks every outbound message against opt-outs again, lets these pass.
ALTER TABLE messages ADD COLUMN opt_out_exempt BIGINT NOT NULL DEFAULT 0;
