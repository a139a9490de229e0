-- A sandbox subaccount's messages all go to the simulated carrier, at no charge, whatever the
-- routes: a staging environment runs the real application and never texts a handset.
ALTER TABLE accounts ADD COLUMN sandbox BIGINT NOT NULL DEFAULT 0;
