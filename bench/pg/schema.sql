-- The PostgreSQL baseline of bench/run.sh: the same work as one buoni
-- redemption, as one transaction (one pgbench run of redeem.sql).
-- A card row with its balance and status; a ledger row per redemption with
-- a unique idempotency key; redeem() checks the key (a retry answers the
-- first result), locks the card, checks status and balance, debits it and
-- inserts the ledger row. One round trip per redemption (a plpgsql
-- function), so the client's protocol costs PostgreSQL as little as it can.
-- Money is integer cents.
CREATE TABLE cards (
  id            integer PRIMARY KEY,
  programme     text     NOT NULL,
  status        smallint NOT NULL DEFAULT 0,  -- 0 active, 1 blocked
  balance_cents bigint   NOT NULL CHECK (balance_cents >= 0)
);

CREATE TABLE ledger (
  seq                 bigserial PRIMARY KEY,
  idempotency_key     text        NOT NULL UNIQUE,
  card_id             integer     NOT NULL REFERENCES cards (id),
  merchant            text        NOT NULL,
  amount_cents        bigint      NOT NULL CHECK (amount_cents > 0),
  balance_after_cents bigint      NOT NULL,
  created_at          timestamptz NOT NULL DEFAULT now()
);

-- The balance after the redemption; -1 declined (unknown card, blocked, or
-- insufficient funds). A repeated key answers the first result.
CREATE FUNCTION redeem(p_key text, p_card integer, p_amount_cents bigint)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  v_balance bigint;
  v_status  smallint;
  v_prior   bigint;
BEGIN
  SELECT balance_after_cents INTO v_prior FROM ledger WHERE idempotency_key = p_key;
  IF FOUND THEN
    RETURN v_prior;
  END IF;
  SELECT balance_cents, status INTO v_balance, v_status FROM cards WHERE id = p_card FOR UPDATE;
  IF NOT FOUND OR v_status <> 0 OR v_balance < p_amount_cents THEN
    RETURN -1;
  END IF;
  UPDATE cards SET balance_cents = v_balance - p_amount_cents WHERE id = p_card;
  INSERT INTO ledger (idempotency_key, card_id, merchant, amount_cents, balance_after_cents)
  VALUES (p_key, p_card, 'shop', p_amount_cents, v_balance - p_amount_cents);
  RETURN v_balance - p_amount_cents;
END $$;

INSERT INTO cards (id, programme, balance_cents)
SELECT g, 'bench', 5000000 FROM generate_series(1, 10000) AS g;
VACUUM ANALYZE cards;
