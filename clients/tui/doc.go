// Package tui is `liaison chat`: a terminal user interface over
// clients/session, built with bubbletea.
//
// It has two halves. Model is the bubbletea model: it holds what is on the
// screen (operations with unread counts, each operation's history, the
// outbox, open tasks, the connection) and turns keys into effects through
// the small Backend interface; it never touches the network or the disk, so
// tests drive it with messages and assert on View and on the Backend calls.
// Engine is the Backend over a session and a relay connection: one pump per
// operation catches up (Sync), then follows the log (Follow); a message typed
// is first saved in the session's outbox under a fixed msgid (Queue), then
// the pump is kicked, stops following and syncs, which seals and publishes
// it. The relay's dedupe by msgid makes every re-send after a reconnect or a
// restart harmless, so each typed message is stored exactly once.
//
// "Verified" (✓) means what session.Entry.Verified means: the sender's
// signature checked against the operation's roster, itself verified commit
// by commit from the genesis (docs/crypto.md); for own messages, sealed by
// this device. It does not mean that the user compared safety numbers: the
// safety-number view (ctrl+s) is how they do that, out of band.
package tui
