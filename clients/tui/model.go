package tui

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"liaison/clients/session"
	"liaison/relay/wire"
)

// maxEntries bounds the entries kept in memory per operation.
const maxEntries = 2000

// opView is what the model holds about one operation.
type opView struct {
	name       string
	entries    []session.Entry
	unread     int
	outbox     []session.Queued
	info       session.OpInfo
	colleagues []Colleague
	tasks      []Task
}

// Model is the bubbletea model of `liaison chat`. Create it with New.
type Model struct {
	be     Backend
	events <-chan tea.Msg

	ops  []*opView
	cur  int
	conn ConnMsg

	input  textinput.Model
	scroll int // history lines scrolled up from the bottom

	safety    bool // the safety-number view is open
	safetySel int

	acking map[string]TaskState // "op/id" of tasks whose acknowledgement is on its way
	notice string

	width, height int
	quitting      bool
	onQuit        func()
}

// Options configures a Model.
type Options struct {
	// Ops are the operations to show, in order; Current is selected first
	// (added to Ops if missing).
	Ops     []string
	Current string
	// Events is the Engine's event channel; nil in tests that feed events
	// to Update themselves.
	Events <-chan tea.Msg
	// Width and Height are the initial size (the terminal's size replaces
	// them). Default 80x24.
	Width, Height int
	// OnQuit, if set, is called once when the user asks to quit.
	OnQuit func()
}

// New returns a model over be.
func New(be Backend, o Options) *Model {
	in := textinput.New()
	in.Prompt = "> "
	in.Placeholder = "type a message, enter to send"
	in.CharLimit = session.MaxText
	in.SetVirtualCursor(false)
	in.Focus()
	m := &Model{be: be, events: o.Events, input: in, acking: make(map[string]TaskState), width: o.Width, height: o.Height, onQuit: o.OnQuit}
	if m.width <= 0 {
		m.width = 80
	}
	if m.height <= 0 {
		m.height = 24
	}
	for _, op := range o.Ops {
		m.opFor(op)
	}
	if o.Current != "" {
		m.opFor(o.Current)
		m.cur = m.index(o.Current)
	}
	m.layout()
	return m
}

// index returns op's position in m.ops, -1 if absent.
func (m *Model) index(op string) int {
	for i, v := range m.ops {
		if v.name == op {
			return i
		}
	}
	return -1
}

// opFor returns op's view, adding it if needed.
func (m *Model) opFor(op string) *opView {
	if i := m.index(op); i >= 0 {
		return m.ops[i]
	}
	v := &opView{name: op}
	m.ops = append(m.ops, v)
	return v
}

// current returns the operation on screen, nil if there is none.
func (m *Model) current() *opView {
	if m.cur < 0 || m.cur >= len(m.ops) {
		return nil
	}
	return m.ops[m.cur]
}

// Current returns the name of the operation on screen.
func (m *Model) Current() string {
	if v := m.current(); v != nil {
		return v.name
	}
	return ""
}

// Unread returns op's unread count.
func (m *Model) Unread(op string) int {
	if i := m.index(op); i >= 0 {
		return m.ops[i].unread
	}
	return 0
}

// Outbox returns op's outbox as shown.
func (m *Model) Outbox(op string) []session.Queued {
	if i := m.index(op); i >= 0 {
		return slices.Clone(m.ops[i].outbox)
	}
	return nil
}

// Init implements tea.Model: it starts listening to the engine's events.
func (m *Model) Init() tea.Cmd { return m.waitEvent() }

// waitEvent returns a command that delivers the next engine event.
func (m *Model) waitEvent() tea.Cmd {
	if m.events == nil {
		return nil
	}
	ch := m.events
	return func() tea.Msg {
		ev, ok := <-ch
		if !ok {
			return nil
		}
		return eventMsg{ev}
	}
}

// eventMsg wraps an engine event, so that the model knows to wait for the
// next one.
type eventMsg struct{ ev tea.Msg }

// Update implements tea.Model.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if ev, ok := msg.(eventMsg); ok {
		m.handle(ev.ev)
		return m, m.waitEvent()
	}
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.layout()
		return m, nil
	case tea.KeyPressMsg:
		return m, m.key(msg)
	case tea.PasteMsg:
		var cmd tea.Cmd
		m.input, cmd = m.input.Update(msg)
		return m, cmd
	}
	m.handle(msg)
	return m, nil
}

// handle applies an engine event or the result of an effect.
func (m *Model) handle(msg tea.Msg) {
	switch msg := msg.(type) {
	case HistoryMsg:
		m.addEntries(msg)
	case OutboxMsg:
		m.opFor(msg.Op).outbox = slices.Clone(msg.Items)
	case InfoMsg:
		v := m.opFor(msg.Op)
		v.info, v.colleagues = msg.Info, msg.Colleagues
	case ConnMsg:
		m.conn = msg
	case NoticeMsg:
		if msg.Op != "" {
			m.notice = msg.Op + ": " + msg.Text
		} else {
			m.notice = msg.Text
		}
	case TasksMsg:
		v := m.opFor(msg.Op)
		v.tasks = slices.Clone(msg.Tasks)
		for _, t := range v.tasks {
			if st, ok := m.acking[t.Op+"/"+t.ID]; ok && t.State == st {
				delete(m.acking, t.Op+"/"+t.ID)
			}
		}
	case queuedMsg:
		if msg.err != nil {
			m.notice = "not queued: " + msg.err.Error()
			return
		}
		v := m.opFor(msg.op)
		if !slices.ContainsFunc(v.outbox, func(q session.Queued) bool { return q.MsgID == msg.q.MsgID }) && !v.hasOwn(msg.q.MsgID[:]) {
			v.outbox = append(v.outbox, msg.q)
		}
	case ackedMsg:
		if msg.err != nil {
			delete(m.acking, msg.op+"/"+msg.id)
			m.notice = "acknowledgement not sent: " + msg.err.Error()
		}
	case taskSentMsg:
		if msg.err != nil {
			m.notice = "task not sent: " + msg.err.Error()
		} else {
			m.notice = "task sent to " + msg.op
		}
	}
}

// hasOwn reports whether v's history shows the own message with msgid id.
func (v *opView) hasOwn(id []byte) bool {
	for i := len(v.entries) - 1; i >= 0 && i >= len(v.entries)-200; i-- {
		if e := v.entries[i]; e.Kind == session.EntryOwn && bytes.Equal(e.MsgID, id) {
			return true
		}
	}
	return false
}

// addEntries appends entries the view has not shown yet (by sequence), and
// drops own messages that reached the log from the outbox.
func (m *Model) addEntries(msg HistoryMsg) {
	v := m.opFor(msg.Op)
	var last uint64
	if n := len(v.entries); n > 0 {
		last = v.entries[n-1].Seq
	}
	for _, e := range msg.Entries {
		if e.Seq <= last {
			continue // shown already
		}
		last = e.Seq
		v.entries = append(v.entries, e)
		if e.Kind == session.EntryOwn && len(e.MsgID) > 0 {
			v.outbox = slices.DeleteFunc(v.outbox, func(q session.Queued) bool { return bytes.Equal(q.MsgID[:], e.MsgID) })
		}
		if !msg.Backlog && e.Kind == session.EntryMessage && v != m.current() {
			v.unread++
		}
	}
	if over := len(v.entries) - maxEntries; over > 0 {
		v.entries = slices.Delete(v.entries, 0, over)
	}
}

// key handles a key press.
func (m *Model) key(k tea.KeyPressMsg) tea.Cmd {
	if m.safety {
		switch k.String() {
		case "esc", "ctrl+s", "enter", "q":
			m.safety = false
		case "up", "k":
			m.safetySel = max(0, m.safetySel-1)
		case "down", "j":
			if v := m.current(); v != nil {
				m.safetySel = min(len(v.colleagues)-1, m.safetySel+1)
			}
		case "ctrl+c":
			return m.quit()
		}
		return nil
	}
	switch k.String() {
	case "ctrl+c", "ctrl+q":
		return m.quit()
	case "enter":
		return m.submit()
	case "tab", "ctrl+n", "alt+down":
		m.switchOp(1)
		return nil
	case "shift+tab", "ctrl+p", "alt+up":
		m.switchOp(-1)
		return nil
	case "ctrl+a":
		return m.ack("", TaskUnderstood)
	case "ctrl+s":
		m.openSafety()
		return nil
	case "pgup":
		m.scroll += max(1, m.historyHeight()-1)
		return nil
	case "pgdown":
		m.scroll = max(0, m.scroll-max(1, m.historyHeight()-1))
		return nil
	case "esc":
		m.input.Reset()
		m.notice = ""
		return nil
	}
	var cmd tea.Cmd
	m.input, cmd = m.input.Update(k)
	return cmd
}

// openSafety opens the safety-number view on the first colleague.
func (m *Model) openSafety() {
	m.safety, m.safetySel = true, 0
	if v := m.current(); v != nil && len(v.colleagues) > 1 && v.colleagues[0].Self {
		m.safetySel = 1
	}
}

// quit ends the program.
func (m *Model) quit() tea.Cmd {
	if !m.quitting && m.onQuit != nil {
		m.onQuit()
	}
	m.quitting = true
	return tea.Quit
}

// switchOp moves to the next (d=1) or previous (d=-1) operation.
func (m *Model) switchOp(d int) {
	if len(m.ops) == 0 {
		return
	}
	m.cur = (m.cur + d + len(m.ops)) % len(m.ops)
	m.ops[m.cur].unread = 0
	m.scroll = 0
}

// SelectOp puts op on screen.
func (m *Model) SelectOp(op string) {
	m.cur = m.index(op)
	if v := m.current(); v != nil {
		v.unread = 0
	}
	m.scroll = 0
}

// submit sends the input line: text as a message, "/flash TEXT" and
// "/immediate TEXT" with that priority, "/safety" opens the safety numbers.
func (m *Model) submit() tea.Cmd {
	text := strings.TrimSpace(m.input.Value())
	v := m.current()
	if text == "" || v == nil {
		return nil
	}
	class := wire.ClassRoutine
	switch cmd, rest, _ := strings.Cut(text, " "); cmd {
	case "/flash":
		class, text = wire.ClassFlash, strings.TrimSpace(rest)
	case "/immediate":
		class, text = wire.ClassImmediate, strings.TrimSpace(rest)
	case "/safety":
		m.input.Reset()
		m.openSafety()
		return nil
	case "/ack", "/done", "/unable":
		m.input.Reset()
		return m.ack(strings.TrimSpace(rest), map[string]TaskState{"/ack": TaskUnderstood, "/done": TaskDone, "/unable": TaskUnable}[cmd])
	case "/task":
		return m.sendTask(v.name, rest)
	default:
		if strings.HasPrefix(cmd, "/") && !strings.HasPrefix(cmd, "//") {
			m.notice = fmt.Sprintf("unknown command %s (commands: /flash, /immediate, /ack, /done, /unable, /task, /safety; start with // to send a slash)", cmd)
			return nil
		}
		if strings.HasPrefix(text, "//") {
			text = text[1:]
		}
	}
	if text == "" {
		return nil
	}
	m.input.Reset()
	m.scroll = 0
	m.notice = ""
	op, be := v.name, m.be
	return func() tea.Msg {
		q, err := be.Queue(op, text, class)
		return queuedMsg{op: op, q: q, err: err}
	}
}

// openTasks returns the tasks this member has still to acknowledge, over
// every operation: flash first, then immediate, then routine, oldest first.
func (m *Model) openTasks() []Task {
	return m.tasksWhere(func(t Task) bool { return !t.Own && t.State == TaskOpen })
}

// inHand returns the tasks this member acknowledged but has not closed
// (done or unable), in the same order.
func (m *Model) inHand() []Task {
	return m.tasksWhere(func(t Task) bool { return !t.Own && t.State != TaskOpen && !t.State.Final() })
}

// ownTasks returns the tasks this member sent, newest first.
func (m *Model) ownTasks() []Task {
	out := m.tasksWhere(func(t Task) bool { return t.Own })
	slices.Reverse(out)
	return out
}

func (m *Model) tasksWhere(keep func(Task) bool) []Task {
	var out []Task
	for _, v := range m.ops {
		for _, t := range v.tasks {
			if keep(t) {
				out = append(out, t)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b Task) int {
		if a.Priority != b.Priority {
			return int(b.Priority) - int(a.Priority)
		}
		switch {
		case a.TimeMS < b.TimeMS:
			return -1
		case a.TimeMS > b.TimeMS:
			return 1
		}
		return 0
	})
	return out
}

// ack acknowledges a task with state: the task whose id starts with ref
// (or whose short id is ref), or, with ref empty, the first open task not
// already being acknowledged (for done and unable: the first task in hand,
// else the first open one).
func (m *Model) ack(ref string, state TaskState) tea.Cmd {
	var cands []Task
	switch {
	case ref != "":
		for _, t := range append(m.openTasks(), m.inHand()...) {
			if strings.HasPrefix(t.ID, strings.ToLower(ref)) {
				cands = append(cands, t)
			}
		}
		if len(cands) != 1 {
			m.notice = fmt.Sprintf("%d of your tasks match %q", len(cands), ref)
			return nil
		}
	case state.Final():
		cands = append(m.inHand(), m.openTasks()...)
	default:
		cands = m.openTasks()
	}
	for _, t := range cands {
		k := t.Op + "/" + t.ID
		if _, busy := m.acking[k]; busy {
			continue
		}
		m.acking[k] = state
		be, op, id := m.be, t.Op, t.ID
		return func() tea.Msg {
			return ackedMsg{op: op, id: id, state: state, err: be.Ack(op, id, state)}
		}
	}
	m.notice = "no task to acknowledge"
	return nil
}

// sendTask handles "/task flash|immediate|routine TEXT".
func (m *Model) sendTask(op, rest string) tea.Cmd {
	prio, text, _ := strings.Cut(strings.TrimSpace(rest), " ")
	class, err := session.ParsePriority(prio)
	text = strings.TrimSpace(text)
	if err != nil || text == "" {
		m.notice = "usage: /task flash|immediate|routine TEXT"
		return nil
	}
	m.input.Reset()
	m.notice = "sending the task…"
	be := m.be
	return func() tea.Msg {
		return taskSentMsg{op: op, err: be.SendTask(op, class, text)}
	}
}
