package ledger

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// copyRowsMin is the number of entries, or of usage rows, from which persist
// writes them with COPY instead of an INSERT from arrays: COPY takes its own
// round trip but half the server time for large batches (4,000 entries: 35
// instead of 77 ms here), which is what a page of cycle boundaries or a large
// usage batch writes. For usage rows it is also Go time saved under the org's
// lock, where pgx would encode 18 arrays before sending them: one org's
// 1,000-event batches went from 30,700 to 36,300-37,800 events/s with COPY
// for both and the events' hashing moved out of the lock (`creditd load
// --mode batch --events 1000000 --orgs 1`, 2 cores). COPY keeps the rows'
// order, so entry ids follow the order of posting, as with the INSERT.
const copyRowsMin = 500

var entryCopyColumns = []string{"org_id", "kind", "amount", "balance_after", "lot_id", "lot_delta", "hold_id",
	"held_delta", "debt_delta", "key", "event_id", "team", "user_id", "feature", "task_id", "payment_id", "at", "carried"}

func (c *entryColumns) copy(ctx context.Context, tx pgx.Tx) error {
	var w copyWriter
	w.start(len(c.org) * 200)
	for i := range c.org {
		w.row(len(entryCopyColumns))
		w.text(c.org[i])
		w.text(c.kind[i])
		w.int8(c.amount[i])
		w.int8(c.balanceAfter[i])
		w.int8p(c.lotID[i])
		w.int8(c.lotDelta[i])
		w.textp(c.holdID[i])
		w.int8(c.heldDelta[i])
		w.int8(c.debtDelta[i])
		w.text(c.key[i])
		w.textp(c.eventID[i])
		w.textp(c.team[i])
		w.textp(c.user[i])
		w.textp(c.feature[i])
		w.textp(c.taskID[i])
		w.textp(c.paymentID[i])
		w.timestamptz(c.at[i])
		w.int8p(c.carried[i])
	}
	if err := w.send(ctx, tx, "entries", entryCopyColumns, len(c.org)); err != nil {
		return fmt.Errorf("write entries: %w", err)
	}
	return nil
}

var usageCopyColumns = []string{"org_id", "event_id", "status", "reason", "feature", "units", "runs", "overage_runs",
	"amount", "team", "user_id", "occurred_at", "recorded_at", "cycle_start", "metadata", "debt", "balance_after",
	"request_hash"}

// copyUsageRows writes the usage rows of the orgs' transactions with COPY.
func copyUsageRows(ctx context.Context, tx pgx.Tx, states map[string]*orgState, orgIDs []string, rows int) error {
	var w copyWriter
	w.start(rows * 200)
	for _, id := range orgIDs {
		s := states[id]
		for i := range s.events {
			u := &s.events[i]
			w.row(len(usageCopyColumns))
			w.text(id)
			w.text(u.eventID)
			w.text(u.status)
			w.textp(u.reason)
			w.textp(u.feature)
			w.int8p(u.units)
			w.int8p(u.runs)
			w.int8(u.overageRuns)
			w.int8(u.amount)
			w.textp(u.team)
			w.textp(u.user)
			w.timestamptz(u.occurredAt)
			w.timestamptz(s.at)
			w.timestamptz(s.cycle.Start)
			w.jsonb(u.metadata)
			w.int8(u.debt)
			w.int8(u.balance)
			w.bytea(u.hash)
		}
	}
	if err := w.send(ctx, tx, "usage_events", usageCopyColumns, rows); err != nil {
		return fmt.Errorf("write usage events: %w", err)
	}
	return nil
}

// copyWriter builds COPY's binary format for the few column types the
// ledger copies (text, bigint, timestamptz, jsonb, bytea). Written by hand
// because pgx plans the encoding of every value of every row, which was a
// sixth of a busy worker's CPU, spent under the org's lock. The COPY test
// (TestUsage_LargeBatchCopy) holds it to what the INSERTs store.
type copyWriter struct {
	buf []byte
}

// postgresEpochMicros is 2000-01-01 00:00 UTC, where timestamptz counts
// from, in microseconds since the Unix epoch.
const postgresEpochMicros = 946_684_800_000_000

func (w *copyWriter) start(size int) {
	w.buf = make([]byte, 0, size)
	w.buf = append(w.buf, "PGCOPY\n\xff\r\n\x00"...)
	w.buf = binary.BigEndian.AppendUint32(w.buf, 0) // flags
	w.buf = binary.BigEndian.AppendUint32(w.buf, 0) // header extension length
}

func (w *copyWriter) row(columns int) {
	w.buf = binary.BigEndian.AppendUint16(w.buf, uint16(columns))
}

func (w *copyWriter) null() {
	w.buf = binary.BigEndian.AppendUint32(w.buf, 0xFFFFFFFF) // length -1
}

func (w *copyWriter) text(s string) {
	w.buf = binary.BigEndian.AppendUint32(w.buf, uint32(len(s)))
	w.buf = append(w.buf, s...)
}

func (w *copyWriter) textp(s *string) {
	if s == nil {
		w.null()
		return
	}
	w.text(*s)
}

func (w *copyWriter) int8(v int64) {
	w.buf = binary.BigEndian.AppendUint32(w.buf, 8)
	w.buf = binary.BigEndian.AppendUint64(w.buf, uint64(v))
}

func (w *copyWriter) int8p(v *int64) {
	if v == nil {
		w.null()
		return
	}
	w.int8(*v)
}

// timestamptz writes t as microseconds since 2000, truncating what is finer,
// as pgx does.
func (w *copyWriter) timestamptz(t time.Time) {
	w.int8(t.Unix()*1_000_000 + int64(t.Nanosecond())/1000 - postgresEpochMicros)
}

func (w *copyWriter) bytea(b []byte) {
	w.buf = binary.BigEndian.AppendUint32(w.buf, uint32(len(b)))
	w.buf = append(w.buf, b...)
}

// jsonb writes a JSON document (nil is NULL) in jsonb's binary format:
// version 1, then the text.
func (w *copyWriter) jsonb(doc []byte) {
	if doc == nil {
		w.null()
		return
	}
	w.buf = binary.BigEndian.AppendUint32(w.buf, uint32(len(doc)+1))
	w.buf = append(w.buf, 1)
	w.buf = append(w.buf, doc...)
}

// send ends the data and copies it into table, which must then hold rows
// more rows.
func (w *copyWriter) send(ctx context.Context, tx pgx.Tx, table string, columns []string, rows int) error {
	w.buf = binary.BigEndian.AppendUint16(w.buf, 0xFFFF) // end of data
	sql := fmt.Sprintf("COPY %s (%s) FROM STDIN (FORMAT binary)", pgx.Identifier{table}.Sanitize(), strings.Join(columns, ", "))
	tag, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(w.buf), sql)
	if err != nil {
		return err
	}
	if n := tag.RowsAffected(); n != int64(rows) {
		return fmt.Errorf("wrote %d of %d rows", n, rows)
	}
	return nil
}
