package ledger

// DueSQLForTest exposes a due-work query to the EXPLAIN test.
func DueSQLForTest(k DueKind) string { return dueSQL[k] }

// CopyRowsMin is the entry (or usage row) count from which persist writes them with
// COPY, for the test that compares the two write paths.
const CopyRowsMin = copyRowsMin

// QueuedForTest is how many of org's batches wait for a transaction in b.
func QueuedForTest(b *Batcher, org string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if g := b.orgs[org]; g != nil {
		return len(g.queue)
	}
	return 0
}

// MergingOrgsForTest is how many orgs have batches queued or being applied
// together in b.
func MergingOrgsForTest(b *Batcher) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.orgs)
}
