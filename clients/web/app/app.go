//go:build js && wasm

package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall/js"
	"time"

	"liaison/clients"
	"liaison/clients/session"
	"liaison/crypto"
	"liaison/relay/wire"
)

// app is the state of one page: the unlocked identity, two relay clients
// and a session over the browser's storage.
//
// Two clients because a client holds at most one subscription per
// operation: one follows every open operation (Session.Follow), the other
// carries what the person does (Sync, Send, roster changes), whose short
// catch-up subscriptions would otherwise collide with the follower's. Both
// sessions share one store, so the operation locks serialise them.
type app struct {
	mu      sync.Mutex
	id      *crypto.Identity
	store   *localStore
	act     *session.Session // actions
	fol     *session.Session // following
	actC    *clients.Client
	folC    *clients.Client
	ctx     context.Context
	cancel  context.CancelFunc
	follows map[string]*follow
}

// follow is one operation being followed, and what the page was shown.
type follow struct {
	cancel context.CancelFunc
	last   uint64 // highest sequence handed to the page
}

func newApp() *app { return &app{follows: map[string]*follow{}} }

// kdfParams are the argon2id costs of identity files made in the browser:
// the library's defaults, like the CLI's.
var kdfParams = crypto.DefaultKDFParams

func (a *app) exports() js.Value {
	o := js.Global().Get("Object").New()
	set := func(name string, f js.Func) { o.Set(name, f) }
	set("hasIdentity", syncFn(func([]js.Value) any { _, ok := loadIdentityFile(); return ok }))
	set("createIdentity", async(a.createIdentity))
	set("unlock", async(a.unlock))
	set("defaultRelays", syncFn(func([]js.Value) any {
		if v, ok := getItem(keyRelays); ok {
			return v
		}
		return js.Global().Get("location").Get("host").String()
	}))
	set("status", syncFn(a.status))
	set("ops", async(a.ops))
	set("open", async(a.open))
	set("history", async(a.history))
	set("send", async(a.send))
	set("createOp", async(a.createOp))
	set("addMember", async(a.addMember))
	set("members", async(a.members))
	set("verifyCode", async(a.verifyCode))
	set("sendTask", async(a.sendTask))
	set("ackTask", async(a.ackTask))
	set("tasks", async(a.tasks))
	return o
}

func (a *app) createIdentity(args []js.Value) (any, error) {
	name, pass, relays := arg(args, 0), arg(args, 1), arg(args, 2)
	if _, ok := loadIdentityFile(); ok {
		return nil, errors.New("this browser already holds an identity")
	}
	if len(pass) < 8 {
		return nil, errors.New("choose a passphrase of at least 8 characters")
	}
	id, err := crypto.NewIdentity(rand.Reader, strings.TrimSpace(name))
	if err != nil {
		return nil, err
	}
	file, err := crypto.EncryptIdentity(rand.Reader, id, []byte(pass), kdfParams)
	if err != nil {
		return nil, err
	}
	if err := setItem(keyIdentity, base64.StdEncoding.EncodeToString(file)); err != nil {
		return nil, err
	}
	return a.start(id, relays)
}

func (a *app) unlock(args []js.Value) (any, error) {
	pass, relays := arg(args, 0), arg(args, 1)
	file, ok := loadIdentityFile()
	if !ok {
		return nil, errors.New("no identity in this browser")
	}
	id, err := crypto.DecryptIdentity(file, []byte(pass))
	if errors.Is(err, crypto.ErrDecrypt) {
		return nil, errors.New("wrong passphrase")
	}
	if err != nil {
		return nil, err
	}
	return a.start(id, relays)
}

// start connects both clients and opens the session of id.
func (a *app) start(id *crypto.Identity, relayList string) (any, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.id != nil {
		return nil, errors.New("already unlocked")
	}
	var relays []string
	for _, r := range strings.Split(relayList, ",") {
		if r = strings.TrimSpace(r); r != "" {
			relays = append(relays, toWS(r))
		}
	}
	if len(relays) == 0 {
		return nil, errors.New("no relay address")
	}
	if err := lockIdentity(id.PublicKey()); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := clients.Options{Identity: id, ClientName: "liaison-web", ReconnectMax: 3 * time.Second}
	actC, err := clients.Dial(ctx, relays, opts)
	if err != nil {
		return nil, err
	}
	folC, err := clients.Dial(ctx, relays, opts)
	if err != nil {
		actC.Close()
		return nil, err
	}
	setItem(keyRelays, relayList)
	a.id, a.actC, a.folC = id, actC, folC
	a.store = newLocalStore(id.PublicKey())
	sopts := session.Options{Store: a.store, Warn: func(op, msg string) { emit("warn", op, msg) }}
	a.act = session.New("", id, actC, sopts)
	a.fol = session.New("", id, folC, sopts)
	a.ctx, a.cancel = context.WithCancel(context.Background())
	return a.me(), nil
}

// toWS turns a relay address as typed into a WebSocket URL, using wss://
// when the page itself came over https.
func toWS(addr string) string {
	if strings.Contains(addr, "://") {
		return addr
	}
	if js.Global().Get("location").Get("protocol").String() == "https:" {
		return "wss://" + addr + "/ws"
	}
	return "ws://" + addr + "/ws"
}

func (a *app) me() map[string]any {
	return map[string]any{
		"name":        a.id.Name(),
		"fingerprint": a.id.Fingerprint(),
		"token":       a.id.Token().String(),
	}
}

// emit calls the page's liaisonEvent(kind, op, data), if it has one.
func emit(kind, op string, data any) {
	if f := js.Global().Get("liaisonEvent"); f.Type() == js.TypeFunction {
		f.Invoke(kind, op, js.ValueOf(data))
	}
}

func (a *app) sessions() (*session.Session, *session.Session, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.act == nil {
		return nil, nil, errors.New("locked: unlock your identity first")
	}
	return a.act, a.fol, nil
}

func (a *app) status([]js.Value) any {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.folC == nil {
		return map[string]any{"node": "", "unlocked": false}
	}
	return map[string]any{"node": a.folC.Node(), "sendNode": a.actC.Node(), "unlocked": true}
}

func opInfo(i session.OpInfo) map[string]any {
	role := ""
	if i.Member {
		role = i.Role.String()
	}
	return map[string]any{"op": i.Op, "seq": i.Seq, "epoch": i.Epoch, "member": i.Member, "role": role, "members": i.Members, "anomalies": i.Anomalies}
}

func (a *app) ops([]js.Value) (any, error) {
	act, _, err := a.sessions()
	if err != nil {
		return nil, err
	}
	infos, err := act.Ops()
	if err != nil {
		return nil, err
	}
	out := make([]any, 0, len(infos))
	for _, i := range infos {
		out = append(out, opInfo(i))
	}
	return out, nil
}

// open syncs op, returns its info, and starts following it: new entries
// reach the page as liaisonEvent("entries", op, [...]) in sequence order,
// each once. The page reads what it already has with history.
func (a *app) open(args []js.Value) (any, error) {
	op := strings.TrimSpace(arg(args, 0))
	act, _, err := a.sessions()
	if err != nil {
		return nil, err
	}
	if !wire.ValidOp(op) {
		return nil, fmt.Errorf("%q is not a valid operation name", op)
	}
	ctx, cancel := context.WithTimeout(a.ctx, 60*time.Second)
	defer cancel()
	if _, err := act.Sync(ctx, op); err != nil {
		return nil, err
	}
	info, err := act.Info(op)
	if err != nil {
		return nil, err
	}
	return opInfo(info), nil
}

// history returns op's entries from sequence from on and makes sure op is
// followed from there: the page renders these, then the entries events.
func (a *app) history(args []js.Value) (any, error) {
	op := arg(args, 0)
	act, fol, err := a.sessions()
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	if _, ok := a.follows[op]; ok {
		a.mu.Unlock()
		return nil, fmt.Errorf("%s: history was already read; new entries arrive as events", op)
	}
	fctx, fcancel := context.WithCancel(a.ctx)
	f := &follow{cancel: fcancel}
	a.follows[op] = f
	a.mu.Unlock()
	es, err := act.History(op, 1)
	if err != nil && !errors.Is(err, session.ErrNoState) {
		return nil, err
	}
	out := make([]any, 0, len(es))
	for _, e := range es {
		out = append(out, entryJS(e))
		f.last = e.Seq
	}
	go a.followLoop(fctx, fol, op, f)
	return out, nil
}

// followLoop follows op until the page goes away, restarting the follow
// after a failure, each time from the entry after the last one shown: the
// session hands over what another session call processed meanwhile, so
// the page sees each sequence once, in order.
func (a *app) followLoop(ctx context.Context, fol *session.Session, op string, f *follow) {
	for attempt := 0; ctx.Err() == nil; attempt++ {
		err := fol.FollowFrom(ctx, op, f.last+1, func(e session.Entry) {
			if e.Seq > f.last {
				f.last = e.Seq
				emit("entries", op, []any{entryJS(e)})
			}
		})
		if ctx.Err() != nil {
			return
		}
		emit("warn", op, fmt.Sprintf("following %s stopped (%v); retrying", op, err))
		t := time.NewTimer(time.Duration(min(attempt+1, 10)) * time.Second)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

func entryJS(e session.Entry) map[string]any {
	kind := map[session.EntryKind]string{
		session.EntryMessage: "message", session.EntryOwn: "own", session.EntryCommit: "commit",
		session.EntryBeforeJoin: "before-join", session.EntryNotMember: "not-member", session.EntryRejected: "rejected",
	}[e.Kind]
	warnings := make([]any, len(e.Warnings))
	for i, w := range e.Warnings {
		warnings[i] = w
	}
	fp := ""
	if len(e.Sender) == 32 {
		fp = crypto.Fingerprint([32]byte(e.Sender))
	}
	out := map[string]any{
		"seq": e.Seq, "kind": kind, "sender": e.SenderName, "fingerprint": fp, "verified": e.Verified(),
		"time": e.TimeMS, "type": e.Type, "text": e.Text, "summary": e.Summary, "epoch": e.Epoch, "warnings": warnings,
	}
	if len(e.TaskID) > 0 {
		out["taskId"] = hex.EncodeToString(e.TaskID)
		out["priority"] = e.Priority.String()
		out["state"] = stateName(e.State)
		out["due"] = e.DueMS
	}
	return out
}

func (a *app) send(args []js.Value) (any, error) {
	op, text := arg(args, 0), arg(args, 1)
	act, _, err := a.sessions()
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(text) == "" {
		return nil, errors.New("empty message")
	}
	ctx, cancel := context.WithTimeout(a.ctx, 60*time.Second)
	defer cancel()
	r, err := act.Send(ctx, op, text, wire.ClassRoutine)
	if err != nil {
		return nil, err
	}
	return map[string]any{"seq": r.Seq, "dup": r.Dup}, nil
}

func (a *app) createOp(args []js.Value) (any, error) {
	op := strings.TrimSpace(arg(args, 0))
	act, _, err := a.sessions()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(a.ctx, 60*time.Second)
	defer cancel()
	if _, err := act.CreateOp(ctx, op, nil); err != nil {
		return nil, err
	}
	info, err := act.Info(op)
	if err != nil {
		return nil, err
	}
	return opInfo(info), nil
}

func (a *app) addMember(args []js.Value) (any, error) {
	op, token, roleName := arg(args, 0), strings.TrimSpace(arg(args, 1)), arg(args, 2)
	act, _, err := a.sessions()
	if err != nil {
		return nil, err
	}
	tok, err := crypto.ParseTokenString(token)
	if err != nil {
		return nil, fmt.Errorf("not an identity token: %w", err)
	}
	role, err := crypto.ParseRole(roleName)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(a.ctx, 60*time.Second)
	defer cancel()
	if _, err := act.Add(ctx, op, tok, role); err != nil {
		return nil, err
	}
	return tok.Name, nil
}

func (a *app) members(args []js.Value) (any, error) {
	op := arg(args, 0)
	act, _, err := a.sessions()
	if err != nil {
		return nil, err
	}
	r, err := act.Members(op)
	if err != nil {
		return nil, err
	}
	cs := session.Colleagues(r, a.id.PublicKey())
	out := make([]any, 0, len(cs))
	for _, c := range cs {
		out = append(out, map[string]any{"name": c.Name, "role": c.Role.String(), "fingerprint": c.Fingerprint, "safety": c.SafetyNumber, "self": c.Self})
	}
	return out, nil
}

func (a *app) verifyCode(args []js.Value) (any, error) {
	act, _, err := a.sessions()
	if err != nil {
		return nil, err
	}
	v, err := act.Verify(arg(args, 0))
	if err != nil {
		return nil, err
	}
	return map[string]any{"epoch": v.Epoch, "code": v.Code}, nil
}
