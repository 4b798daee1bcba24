package tui

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"liaison/clients/session"
	"liaison/relay/wire"
)

// Marks shown beside senders.
const (
	markVerified   = "✓" // session.Entry.Verified
	markWarning    = "!" // verified, with warnings (shown below the entry)
	markRejected   = "✗" // failed verification, not shown as a message
	markUnreadable = "?" // sent outside this member's epochs
	markQueued     = "…" // in the outbox, not yet in the log
)

const opsWidth = 22

var (
	styleHeader   = lipgloss.NewStyle().Bold(true).Reverse(true)
	styleOK       = lipgloss.NewStyle().Foreground(lipgloss.Green)
	styleBad      = lipgloss.NewStyle().Foreground(lipgloss.Red).Bold(true)
	styleWarn     = lipgloss.NewStyle().Foreground(lipgloss.Yellow)
	styleFaint    = lipgloss.NewStyle().Faint(true)
	styleSelected = lipgloss.NewStyle().Reverse(true)
	styleFlash    = lipgloss.NewStyle().Foreground(lipgloss.Red).Bold(true)
	styleSender   = lipgloss.NewStyle().Bold(true)
)

// layout sizes the input to the window.
func (m *Model) layout() {
	m.input.SetWidth(max(10, m.width-len(m.input.Prompt)-1))
}

// View implements tea.Model.
func (m *Model) View() tea.View {
	if m.quitting {
		return tea.NewView("")
	}
	var rows []string
	rows = append(rows, m.headerView())
	tasks := m.tasksView()
	rows = append(rows, tasks...)
	bodyH := max(1, m.height-4-len(tasks))
	if m.safety {
		rows = append(rows, m.safetyView(bodyH))
	} else {
		rows = append(rows, lipgloss.JoinHorizontal(lipgloss.Top, m.opsView(bodyH), m.historyView(m.width-opsWidth, bodyH)))
	}
	rows = append(rows, fit(styleWarn.Render(sanitize(m.notice)), m.width))
	inputY := len(rows)
	rows = append(rows, m.input.View())
	rows = append(rows, fit(styleFaint.Render("enter send · tab/ctrl+n/ctrl+p operation · ctrl+a acknowledge task · ctrl+s safety numbers · pgup/pgdn scroll · ctrl+c quit"), m.width))
	v := tea.NewView(strings.Join(rows, "\n"))
	v.AltScreen = true
	v.WindowTitle = "liaison chat"
	if c := m.input.Cursor(); c != nil && !m.safety {
		c.Position.Y += inputY
		v.Cursor = c
	}
	return v
}

// Text returns the screen as plain text (no styling), for tests and logs.
func (m *Model) Text() string {
	return ansi.Strip(m.View().Content)
}

// historyHeight is the height of the history pane.
func (m *Model) historyHeight() int {
	return max(1, m.height-4-len(m.tasksView()))
}

func (m *Model) headerView() string {
	left := " LIAISON"
	if v := m.current(); v != nil {
		left += " │ " + sanitize(v.name)
		if v.info.Members > 0 {
			left += fmt.Sprintf(" · epoch %d · %d members", v.info.Epoch, v.info.Members)
		}
		if v.info.Member {
			left += " · you: " + v.info.Role.String()
		} else if v.info.Seq > 0 {
			left += " · not a member"
		}
	}
	var right string
	if m.conn.Connected {
		right = " ● connected to " + sanitize(m.conn.Node) + " (" + sanitize(hostOf(m.conn.URL)) + ") "
	} else {
		right = " ○ offline: reconnecting… "
	}
	// The connection indicator wins over the operation's description.
	right = fit(right, m.width)
	left = fit(left, m.width-lipgloss.Width(right))
	gap := max(0, m.width-lipgloss.Width(left)-lipgloss.Width(right))
	return styleHeader.Render(left + strings.Repeat(" ", gap) + right)
}

// hostOf returns host:port of a ws:// URL.
func hostOf(u string) string {
	u = strings.TrimPrefix(strings.TrimPrefix(u, "ws://"), "wss://")
	h, _, _ := strings.Cut(u, "/")
	return h
}

// tasksView renders the tasking pane: open tasks (flash first), tasks in
// hand, tasks the user sent. Empty when there are none.
func (m *Model) tasksView() []string {
	open, hand, own := m.openTasks(), m.inHand(), m.ownTasks()
	if len(open)+len(hand)+len(own) == 0 {
		return nil
	}
	rows := []string{styleHeader.Render(fit(fmt.Sprintf(" TASKS: %d to acknowledge (ctrl+a acknowledges the top one; /done, /unable close one)", len(open)), m.width))}
	line := func(t Task) string {
		mark := markVerified
		if !t.Verified {
			mark = markRejected
		}
		l := fmt.Sprintf("%s %-9s %s %s  %s%s: %s", priorityIcon(t.Priority), strings.ToUpper(t.Priority.String()), t.Short, sanitize(t.Op), sanitize(t.From), mark, sanitize(t.Text))
		if t.DueMS > 0 {
			l += "  due " + clock(t.DueMS)
		}
		if t.Overdue {
			l += "  OVERDUE"
		}
		if st, ok := m.acking[t.Op+"/"+t.ID]; ok {
			l += "  [" + st.String() + "…]"
		}
		return l
	}
	for i, t := range open {
		if i == 4 {
			rows = append(rows, fmt.Sprintf("  … and %d more", len(open)-4))
			break
		}
		l := fit(line(t), m.width)
		if t.Priority == wire.ClassFlash {
			l = styleFlash.Render(l)
		}
		rows = append(rows, l)
	}
	for i, t := range hand {
		if i == 2 {
			break
		}
		rows = append(rows, styleFaint.Render(fit(line(t)+"  ("+t.State.String()+")", m.width)))
	}
	for i, t := range own {
		if i == 2 {
			break
		}
		l := fmt.Sprintf("  sent by you %s %s: %s · received %d/%d · acknowledged %d/%d", t.Short, sanitize(t.Op), sanitize(t.Text), t.Received, t.Members, t.AckedBy, t.Members)
		if t.OverdueCount > 0 {
			l += fmt.Sprintf(" · %d overdue", t.OverdueCount)
		}
		rows = append(rows, fit(l, m.width))
	}
	return rows
}

func priorityIcon(c wire.Class) string {
	switch c {
	case wire.ClassFlash:
		return "▲"
	case wire.ClassImmediate:
		return "△"
	}
	return "·"
}

// opsView renders the list of operations with unread counts.
func (m *Model) opsView(h int) string {
	var rows []string
	rows = append(rows, styleFaint.Render(fit("OPERATIONS", opsWidth-1)))
	for i, v := range m.ops {
		name := sanitize(v.name)
		badge := ""
		if v.unread > 0 {
			badge = fmt.Sprintf(" (%d)", v.unread)
		}
		if n := len(v.outbox); n > 0 {
			badge += fmt.Sprintf(" %s%d", markQueued, n)
		}
		cursor := " "
		if i == m.cur {
			cursor = "▸"
		}
		line := fit(cursor+name, opsWidth-1-lipgloss.Width(badge)) + badge
		line = fit(line, opsWidth-1)
		if i == m.cur {
			line = styleSelected.Render(line)
		}
		rows = append(rows, line)
	}
	for len(rows) < h {
		rows = append(rows, "")
	}
	col := lipgloss.NewStyle().Width(opsWidth - 1).MaxHeight(h).Render(strings.Join(rows[:h], "\n"))
	sep := strings.TrimSuffix(strings.Repeat("│\n", h), "\n")
	return lipgloss.JoinHorizontal(lipgloss.Top, col, sep)
}

// historyView renders the last h lines of the current operation's history,
// followed by its outbox.
func (m *Model) historyView(w, h int) string {
	v := m.current()
	if v == nil {
		return fit(" no operation: start with `liaison chat OP`", w)
	}
	want := h + m.scroll
	var lines []string
	// The outbox, newest last, below the history.
	for i := len(v.outbox) - 1; i >= 0 && len(lines) < want; i-- {
		q := v.outbox[i]
		state := "queued, waiting for the relay"
		if q.Sealed {
			state = "sent, waiting for the relay's confirmation"
		}
		prefix := fmt.Sprintf("%s  %s ", clock(q.TimeMS), styleSender.Render("you"))
		lines = append(lines, reverse(wrapEntry(prefix+markQueued+" "+sanitize(q.Text)+styleFaint.Render("  ("+state+")"), w))...)
	}
	for i := len(v.entries) - 1; i >= 0 && len(lines) < want; i-- {
		lines = append(lines, reverse(entryLines(v.entries[i], w))...)
	}
	if len(lines) == 0 {
		lines = append(lines, styleFaint.Render(" nothing yet"))
	}
	// lines are newest first.
	m.scroll = min(m.scroll, max(0, len(lines)-h))
	end := min(len(lines), m.scroll+h)
	win := reverse(lines[m.scroll:end])
	for len(win) < h {
		win = append([]string{""}, win...)
	}
	return lipgloss.NewStyle().Width(w).MaxHeight(h).Render(strings.Join(win, "\n"))
}

func reverse(s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[len(s)-1-i] = x
	}
	return out
}

// entryLines renders one history entry (wrapped to w) and its warnings.
func entryLines(e session.Entry, w int) []string {
	ts := clock(e.TimeMS)
	var body string
	switch e.Kind {
	case session.EntryMessage, session.EntryOwn:
		mark := styleOK.Render(markVerified)
		if len(e.Warnings) > 0 {
			mark = styleWarn.Render(markVerified + markWarning)
		}
		text := sanitize(e.Text)
		switch e.Type {
		case session.TypeChat, "":
		case session.TypeTask:
			text = fmt.Sprintf("%s %s TASK %s: %s", priorityIcon(e.Priority), strings.ToUpper(e.Priority.String()), shortID(e.TaskID), text)
			if e.DueMS > 0 {
				text += " (due " + clock(e.DueMS) + ")"
			}
		case session.TypeAck:
			text = fmt.Sprintf("acknowledged task %s: %s", shortID(e.TaskID), e.State)
			if e.Text != "" {
				text += " — " + sanitize(e.Text)
			}
		default:
			text = fmt.Sprintf("[%s message: not supported by this version]", sanitize(e.Type))
		}
		name := sanitize(e.SenderName)
		if e.Kind == session.EntryOwn {
			name += " (you)"
		}
		body = styleSender.Render(name) + " " + mark + " " + text
	case session.EntryCommit:
		body = styleFaint.Render("* " + sanitize(e.Summary))
	case session.EntryBeforeJoin:
		body = styleFaint.Render(markUnreadable + " [sent before you joined]")
	case session.EntryNotMember:
		body = styleFaint.Render(markUnreadable + " [sent while you were not a member]")
	default:
		body = styleBad.Render(markRejected + " [rejected]")
	}
	out := wrapEntry(ts+"  "+body, w)
	for _, warn := range e.Warnings {
		out = append(out, wrapEntry(styleWarn.Render("       "+markWarning+" "+sanitize(warn)), w)...)
	}
	return out
}

// shortID shows a task id as its first 8 hex digits.
func shortID(id []byte) string {
	if len(id) < 4 {
		return "?"
	}
	return hex.EncodeToString(id[:4])
}

func wrapEntry(s string, w int) []string {
	return strings.Split(ansi.Wrap(s, max(10, w-1), " "), "\n")
}

func clock(ms int64) string {
	if ms == 0 {
		return "     "
	}
	return time.UnixMilli(ms).Local().Format("15:04")
}

// safetyView lists the current operation's members with fingerprints; the
// selected one's safety number with the user is shown below.
func (m *Model) safetyView(h int) string {
	v := m.current()
	rows := []string{styleSender.Render(" SAFETY NUMBERS") + styleFaint.Render("  (↑/↓ choose · esc close) compare with the person out of band: in person or by phone")}
	if v == nil || len(v.colleagues) == 0 {
		rows = append(rows, " no verified roster for this operation yet")
		return lipgloss.NewStyle().Width(m.width).Height(h).MaxHeight(h).Render(strings.Join(rows, "\n"))
	}
	sel := min(m.safetySel, len(v.colleagues)-1)
	for i, c := range v.colleagues {
		cursor := " "
		if i == sel {
			cursor = "▸"
		}
		line := fmt.Sprintf("%s%-20s %-8s %s", cursor, fit(sanitize(c.Name), 20), c.Role, c.Fingerprint)
		if c.Self {
			line += "  (you)"
		}
		if i == sel {
			line = styleSelected.Render(fit(line, m.width))
		}
		rows = append(rows, fit(line, m.width))
	}
	c := v.colleagues[sel]
	rows = append(rows, "")
	if c.Self {
		rows = append(rows, " This is you. Your fingerprint: "+c.Fingerprint)
	} else {
		rows = append(rows, " Safety number with "+sanitize(c.Name)+":")
		rows = append(rows, "   "+c.SafetyNumber)
		rows = append(rows, styleFaint.Render(" If theirs differs, someone is between you: do not trust their messages."))
	}
	// Keep the selection and the number visible in small windows.
	if len(rows) > h {
		rows = rows[len(rows)-h:]
	}
	return lipgloss.NewStyle().Width(m.width).Height(h).MaxHeight(h).Render(strings.Join(rows, "\n"))
}

// fit truncates s to w cells.
func fit(s string, w int) string {
	if w <= 0 {
		return ""
	}
	return ansi.Truncate(s, w, "…")
}

// sanitize escapes control characters (and the escape character) so that
// text from other people cannot drive the terminal.
func sanitize(s string) string {
	if strings.IndexFunc(s, isUnsafe) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if isUnsafe(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func isUnsafe(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029'
}
