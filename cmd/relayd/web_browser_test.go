package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath finds Debian's chromium, or $LIAISON_CHROMIUM.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("LIAISON_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "chromium not found: install it with `apt-get install -y chromium` (Debian; .ci/run does) or set LIAISON_CHROMIUM to a Chromium binary"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// browser is one headless chromium process with a fresh profile.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1100, 800),
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, bcancel := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	// Start the browser now, so that its process belongs to this test.
	if err := chromedp.Do(bctx); err != nil {
		bcancel()
		acancel()
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(func() { bcancel(); acancel() })
	return bctx
}

// webUser is one person using the web client in a browser context of its
// own (its own storage, like a separate browser).
type webUser struct {
	t    *testing.T
	name string
	ctx  context.Context
}

func newWebUser(t *testing.T, browser context.Context, name string, phone bool) *webUser {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	u := &webUser{t: t, name: name, ctx: ctx}
	// Open the tab with a context that lives as long as the test: the first
	// Run's context bounds the tab's life.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("%s: open a tab: %v", name, err)
	}
	if phone {
		u.run(chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	}
	return u
}

// run runs actions with a bounded time.
func (u *webUser) run(actions ...chromedp.Action[chromedp.Void]) {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, 90*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		u.t.Fatalf("%s: %v", u.name, err)
	}
}

// evalJS evaluates a JavaScript expression in u's page.
func evalJS[T any](u *webUser, expr string) T {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, 90*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		u.t.Fatalf("%s: %s: %v", u.name, expr, err)
	}
	return v
}

// waitJS waits until the JavaScript expression is true.
func (u *webUser) waitJS(what, expr string) {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, 100*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(90*time.Second)))
	if err != nil {
		dctx, dcancel := context.WithTimeout(u.ctx, 10*time.Second)
		defer dcancel()
		page, _ := chromedp.Run(dctx, chromedp.Evaluate[string](`document.body.innerText`))
		u.t.Fatalf("%s: waiting for %s: %v\npage:\n%s", u.name, what, err, page)
	}
}

// createIdentity loads the page and starts creating an identity under
// relays; identityDone waits for it (the key derivation takes seconds, so
// two users create theirs at once).
func (u *webUser) createIdentity(url, relays string) {
	u.t.Helper()
	u.run(chromedp.Navigate(url))
	u.waitJS("the create form", `!document.getElementById("create-id").hidden`)
	u.run(
		chromedp.SetValue(chromedp.CSS("#relays"), relays),
		chromedp.SendKeys(chromedp.CSS("#new-name"), u.name),
		chromedp.SendKeys(chromedp.CSS("#new-pass"), "correct horse battery"),
		chromedp.SendKeys(chromedp.CSS("#new-pass2"), "correct horse battery"),
		chromedp.Click(chromedp.CSS("#create-btn")),
	)
}

func (u *webUser) identityDone() {
	u.t.Helper()
	u.waitJS("the home screen", `!document.getElementById("home").hidden`)
}

func (u *webUser) token() string {
	tok := evalJS[string](u, `document.getElementById("token").value`)
	if tok == "" {
		u.t.Fatalf("%s: no token shown", u.name)
	}
	return tok
}

// node is the relay node the browser's follower connection is on ("" while
// reconnecting).
func (u *webUser) node() string {
	return evalJS[string](u, `document.getElementById("conn").dataset.node`)
}

func (u *webUser) openOp(op string) {
	u.t.Helper()
	u.run(
		chromedp.SetValue(chromedp.CSS("#open-op"), op),
		chromedp.Click(chromedp.CSS("#open-btn")),
	)
	u.waitJS("joining "+op, fmt.Sprintf(`document.getElementById("op-title").textContent === %q && [...document.querySelectorAll("#entries .entry.commit")].some(e => e.textContent.includes("you joined"))`, op))
}

func (u *webUser) send(text string) {
	u.t.Helper()
	u.run(
		chromedp.SendKeys(chromedp.CSS("#text"), text),
		chromedp.Click(chromedp.CSS("#send-btn")),
	)
	u.waitText(text)
}

// waitText waits until a message with text is shown.
func (u *webUser) waitText(text string) {
	u.t.Helper()
	u.waitJS("message "+text, fmt.Sprintf(`[...document.querySelectorAll("#entries .entry .text")].some(e => e.textContent === %q)`, text))
}

// screenshot saves the page as name in the test's artifact directory (kept
// with `go test -artifacts -outputdir DIR`) and returns its path.
func (u *webUser) screenshot(name string) string {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, 60*time.Second)
	defer cancel()
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		u.t.Fatalf("%s: screenshot: %v", u.name, err)
	}
	file := filepath.Join(u.t.ArtifactDir(), name)
	if err := os.WriteFile(file, shot, 0o644); err != nil {
		u.t.Fatal(err)
	}
	return file
}

// shownEntry is one entry as the page shows it.
type shownEntry struct {
	Seq      int    `json:"seq"`
	Kind     string `json:"kind"`
	Who      string `json:"who"`
	Verified bool   `json:"verified"`
	Text     string `json:"text"`
}

func (u *webUser) entries() []shownEntry {
	return evalJS[[]shownEntry](u, `[...document.querySelectorAll("#entries .entry")].map(e => ({
		seq: +e.dataset.seq, kind: e.dataset.kind,
		who: (e.querySelector(".who") || {}).textContent || "",
		verified: !!e.querySelector(".mark.ok"),
		text: (e.querySelector(".text") || {}).textContent || ""}))`)
}

// checkNoGapNoDup fails unless the page shows entries 1..n, each once, and
// every message once.
func checkNoGapNoDup(t *testing.T, who string, es []shownEntry) {
	t.Helper()
	seen := map[string]bool{}
	for i, e := range es {
		if e.Seq != i+1 {
			t.Fatalf("%s: entry %d has sequence %d: a gap or a duplicate (%+v)", who, i+1, e.Seq, es)
		}
		if e.Kind == "message" || e.Kind == "own" {
			if seen[e.Text] {
				t.Fatalf("%s: message %q shown twice", who, e.Text)
			}
			seen[e.Text] = true
		}
	}
}

// Two people in browsers (the web client served by relayd, compiled to
// WebAssembly) and one with the CLI share an operation on a cluster of three
// relayd processes: each sees the others' messages with their names and
// verified marks. The node one browser is on is killed with SIGKILL: the
// browser moves to another node and resumes, showing every entry once, in
// order, including those sent while it was away.
func TestWebClientBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a browser and a cluster of relayd processes")
	}
	chromiumPath(t)
	start := time.Now()

	// Three nodes; browsers load the page from n1 and may reach every node.
	var addrs []string
	for i := range 3 {
		addrs = append(addrs, freePortOn(t, fmt.Sprintf("127.0.0.%d", i+1)))
	}
	var origins []string
	for _, a := range addrs {
		origins = append(origins, "http://"+a)
	}
	var nodes []*procNode
	for i, a := range addrs {
		n := &procNode{id: fmt.Sprintf("n%d", i+1), dataDir: t.TempDir(), listen: a, raft: freePortOn(t, fmt.Sprintf("127.0.0.%d", i+1))}
		extra := []string{"--allowed-origins", strings.Join(origins, ",")}
		if i > 0 {
			extra = append(extra, "--join", addrs[0])
		}
		n.proc = startProcArgs(t, n.dataDir, n.listen, n.raft, n.id, extra...)
		nodes = append(nodes, n)
	}
	waitUntil(t, 30*time.Second, func() bool {
		for _, n := range nodes {
			if l, count, err := clusterStatus(n.listen); err != nil || count != 3 || l == "" {
				return false
			}
		}
		return true
	})
	t.Logf("cluster up after %v", time.Since(start).Round(time.Millisecond))

	// The CLI user, Carl, is the operation's admin.
	cli := liaisonBinary(t)
	home := t.TempDir()
	liaison := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, cli, args...)
		cmd.Env = append(os.Environ(), "LIAISON_HOME="+home, "LIAISON_RELAY="+strings.Join(addrs, ","), "LIAISON_PASSPHRASE=carl's passphrase")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("liaison %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	liaison("id", "new", "--name", "Carl")

	browser := newBrowser(t)
	page := "http://" + addrs[0] + "/"
	alice := newWebUser(t, browser, "Alice", false) // centre staff, desk
	bruno := newWebUser(t, browser, "Bruno", true)  // officer, phone
	alice.createIdentity(page, strings.Join(addrs, ","))
	bruno.createIdentity(page, strings.Join([]string{addrs[1], addrs[2], addrs[0]}, ","))
	alice.identityDone()
	bruno.identityDone()
	t.Logf("identities created after %v", time.Since(start).Round(time.Millisecond))

	const op = "joint-day"
	liaison("op", "create", op)
	liaison("op", "add", op, alice.token(), "--role", "centre")
	liaison("op", "add", op, bruno.token(), "--role", "officer")
	alice.openOp(op)
	bruno.openOp(op)

	alice.send("Alice: briefing at 0800")
	bruno.send("Bruno: on site at gate 4")
	liaison("send", op, "Carl: roads closed north")
	for _, u := range []*webUser{alice, bruno} {
		for _, m := range []string{"Alice: briefing at 0800", "Bruno: on site at gate 4", "Carl: roads closed north"} {
			u.waitText(m)
		}
	}
	for _, e := range alice.entries() {
		if e.Text == "Carl: roads closed north" && (e.Who != "Carl" || !e.Verified || e.Kind != "message") {
			t.Fatalf("Alice shows Carl's message as %+v", e)
		}
		if e.Text == "Bruno: on site at gate 4" && (e.Who != "Bruno" || !e.Verified) {
			t.Fatalf("Alice shows Bruno's message as %+v", e)
		}
	}
	out := liaison("read", op, "--from", "1")
	for _, m := range []string{"Alice: briefing at 0800", "Bruno: on site at gate 4"} {
		if !strings.Contains(out, m) {
			t.Fatalf("the CLI does not show %q:\n%s", m, out)
		}
	}
	t.Logf("chat exchanged after %v", time.Since(start).Round(time.Millisecond))

	// Kill the node Bruno's browser is on. Messages sent meanwhile through
	// other nodes reach him once, in order, after he moved.
	var victim *procNode
	waitUntil(t, 30*time.Second, func() bool {
		on := bruno.node()
		for _, n := range nodes {
			if n.id == on {
				victim = n
			}
		}
		return victim != nil
	})
	var others []string
	for _, n := range nodes {
		if n != victim {
			others = append(others, n.listen)
		}
	}
	victim.kill()
	t.Logf("killed %s, the node Bruno was on", victim.id)
	during := []string{"Carl: while you were away 1", "Carl: while you were away 2", "Carl: while you were away 3"}
	for _, m := range during {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		cmd := exec.CommandContext(ctx, cli, "send", op, m)
		cmd.Env = append(os.Environ(), "LIAISON_HOME="+home, "LIAISON_RELAY="+strings.Join(others, ","), "LIAISON_PASSPHRASE=carl's passphrase")
		if out, err := cmd.CombinedOutput(); err != nil {
			cancel()
			t.Fatalf("liaison send: %v\n%s", err, out)
		}
		cancel()
	}
	waitUntil(t, 60*time.Second, func() bool { n := bruno.node(); return n != "" && n != victim.id })
	t.Logf("Bruno moved to %s", bruno.node())
	for _, m := range during {
		bruno.waitText(m)
	}
	bruno.send("Bruno: back, all received")
	alice.waitText("Bruno: back, all received")
	checkNoGapNoDup(t, "Bruno", bruno.entries())
	checkNoGapNoDup(t, "Alice", alice.entries())
	if a, b := alice.entries(), bruno.entries(); len(a) != len(b) {
		t.Fatalf("Alice shows %d entries, Bruno %d", len(a), len(b))
	}

	// Tasking: Alice (centre) sends a flash task due now; Bruno
	// acknowledges it with one tap in his browser, Carl as done with the
	// CLI. Alice's board shows who received, who acknowledged and who is
	// overdue (Bruno: received, not done, past due).
	alice.run(chromedp.Click(chromedp.CSS(`#tabs button[data-tab="tasks"]`)))
	alice.run(
		chromedp.SetValue(chromedp.CSS("#task-priority"), "routine"),
		chromedp.SendKeys(chromedp.CSS("#task-text"), "Report your position hourly"),
		chromedp.Click(chromedp.CSS("#task-send")),
	)
	alice.waitJS("the routine task in Alice's list", `[...document.querySelectorAll("#tasks .task")].some(e => e.textContent.includes("Report your position"))`)
	alice.run(
		chromedp.SetValue(chromedp.CSS("#task-priority"), "flash"),
		chromedp.SetValue(chromedp.CSS("#task-due"), "0.001"),
		chromedp.SendKeys(chromedp.CSS("#task-text"), "Secure gate 4 before 0900"),
		chromedp.Click(chromedp.CSS("#task-send")),
	)
	alice.waitJS("the task in Alice's list", `[...document.querySelectorAll("#tasks .task")].some(e => e.textContent.includes("Secure gate 4"))`)
	taskID := evalJS[string](alice, `[...document.querySelectorAll("#tasks .task")].find(e => e.textContent.includes("Secure gate 4")).dataset.task`)
	if first := evalJS[string](alice, `document.querySelector("#tasks .task").dataset.task`); first != taskID {
		t.Fatal("the flash task is not on top of Alice's list")
	}
	bruno.waitText("TASK (flash): Secure gate 4 before 0900")
	bruno.run(chromedp.Click(chromedp.CSS(`#tabs button[data-tab="tasks"]`)))
	bruno.waitJS("the task in Bruno's list", fmt.Sprintf(`!!document.querySelector('#tasks .task.flash[data-task=%q] button.ack-received')`, taskID))
	bruno.run(chromedp.Click(chromedp.CSS(fmt.Sprintf(`#tasks .task[data-task=%q] button.ack-received`, taskID))))
	bruno.waitJS("Bruno's acknowledgement", fmt.Sprintf(`document.querySelector('#tasks .task[data-task=%q]').dataset.state === "received"`, taskID))
	liaison("task", "ack", op, taskID[:8], "--state", "done")
	alice.run(chromedp.Click(chromedp.CSS(`#tabs button[data-tab="board"]`)))
	row := fmt.Sprintf(`document.querySelector('#board tr[data-task=%q]')`, taskID)
	alice.waitJS("the board", row+` && `+row+`.querySelector(".acknowledged").textContent.startsWith("2/2") && `+
		row+`.querySelector(".received").textContent.startsWith("2/2") && `+row+`.querySelector(".overdue-cell").textContent === "Bruno"`)
	board := evalJS[string](alice, `document.querySelector("#board tbody").innerText`)
	if !regexp.MustCompile(`waiting: (Carl, Bruno|Bruno, Carl)`).MatchString(board) {
		t.Fatalf("the board does not show the routine task waiting for Bruno and Carl:\n%s", board)
	}
	for _, want := range []string{"Bruno (received)", "Carl (done)"} {
		if !strings.Contains(board, want) {
			t.Fatalf("the board does not show %q:\n%s", want, board)
		}
	}
	status := liaison("task", "status", op)
	if !strings.Contains(status, "Bruno") || !strings.Contains(status, "received") || !strings.Contains(status, "done") {
		t.Fatalf("liaison task status:\n%s", status)
	}
	t.Logf("tasking done after %v; board: %q", time.Since(start).Round(time.Millisecond), board)

	file := alice.screenshot("centre-board.png")
	bruno.screenshot("officer-phone.png")
	t.Logf("screenshot of the centre's board: %s; whole test %v", file, time.Since(start).Round(time.Millisecond))
}
