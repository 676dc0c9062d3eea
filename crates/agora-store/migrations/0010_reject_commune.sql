-- A dead letter keeps the commune of the token that sent it: a replay writes only for that
-- commune's devices, as the token could.
ALTER TABLE rejects ADD COLUMN token_commune TEXT;
