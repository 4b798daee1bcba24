// Liaison web client: the page. It draws what the Go client (liaison.wasm,
// exposed as the global `liaison`) returns; it holds no key and does no
// crypto.
"use strict";

const $ = (id) => document.getElementById(id);
const S = {
  me: null,
  ops: new Map(), // op -> {info, entries: [], unread: 0, opened: bool}
  current: "",
  tab: "chat",
};

function toast(msg) {
  const t = $("toast");
  t.textContent = msg;
  t.classList.add("show");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => t.classList.remove("show"), 6000);
}

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k);
  return e;
}

function fmtTime(ms) {
  if (!ms) return "";
  const d = new Date(ms);
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

// Events from the Go client.
window.liaisonEvent = (kind, op, data) => {
  if (kind === "entries") {
    for (const e of data) addEntry(op, e);
    renderOps();
    if (op === S.current) afterEntries();
  } else if (kind === "warn") {
    toast(op + ": " + data);
  } else if (kind === "tasks") {
    const o = S.ops.get(op);
    if (o) { o.tasks = data; if (op === S.current) renderTasks(); }
  }
};

window.liaisonReady = () => {
  $("loading").hidden = true;
  $("login").hidden = false;
  $("relays").value = liaison.defaultRelays();
  const params = new URLSearchParams(location.search);
  if (params.get("relays")) $("relays").value = params.get("relays");
  if (liaison.hasIdentity()) { $("unlock").hidden = false; $("pass").focus(); }
  else { $("create-id").hidden = false; $("new-name").focus(); }
};

async function boot() {
  try {
    const go = new Go();
    const res = await WebAssembly.instantiateStreaming(fetch("web/liaison.wasm"), go.importObject);
    go.run(res.instance);
  } catch (err) {
    $("loading").textContent = "Could not load the client: " + err;
  }
}

function busy(btn, on, label) {
  btn.disabled = on;
  if (label) btn.textContent = label;
}

$("create-id").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const p1 = $("new-pass").value, p2 = $("new-pass2").value;
  if (p1 !== p2) { $("login-msg").textContent = "The passphrases differ."; return; }
  busy($("create-btn"), true, "Creating…");
  $("login-msg").textContent = "Deriving the key from your passphrase; this takes a few seconds.";
  try {
    started(await liaison.createIdentity($("new-name").value, p1, $("relays").value));
  } catch (err) {
    $("login-msg").textContent = err.message;
    busy($("create-btn"), false, "Create identity");
  }
});

$("unlock").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  busy($("unlock-btn"), true, "Unlocking…");
  $("login-msg").textContent = "";
  try {
    started(await liaison.unlock($("pass").value, $("relays").value));
  } catch (err) {
    $("login-msg").textContent = err.message;
    busy($("unlock-btn"), false, "Unlock");
  }
});

async function started(me) {
  S.me = me;
  $("login").hidden = true;
  $("home").hidden = false;
  $("me").textContent = me.name;
  $("token").value = me.token;
  $("fingerprint").textContent = me.fingerprint;
  setInterval(pollStatus, 500);
  pollStatus();
  const ops = await liaison.ops();
  for (const info of ops) S.ops.set(info.op, { info, entries: [], unread: 0, opened: false });
  renderOps();
  for (const info of ops) openOp(info.op, false).catch((err) => toast(info.op + ": " + err.message));
}

function pollStatus() {
  const st = liaison.status();
  const c = $("conn");
  c.dataset.node = st.node;
  if (st.node) { c.textContent = "● " + st.node; c.className = "conn on"; }
  else { c.textContent = "○ reconnecting…"; c.className = "conn off"; }
}

// openOp syncs op, reads its history and follows it.
async function openOp(op, select) {
  let o = S.ops.get(op);
  if (!o) { o = { info: null, entries: [], unread: 0, opened: false }; S.ops.set(op, o); }
  o.info = await liaison.open(op);
  if (!o.opened) {
    o.opened = true;
    const hist = await liaison.history(op);
    const fresh = o.entries; // events that raced the history read come after it
    o.entries = [];
    for (const e of hist) addEntry(op, e, true);
    for (const e of fresh) addEntry(op, e, true);
  }
  renderOps();
  if (select) selectOp(op);
  else if (op === S.current) renderOp();
}

function addEntry(op, e, old) {
  let o = S.ops.get(op);
  if (!o) { o = { info: null, entries: [], unread: 0, opened: true }; S.ops.set(op, o); }
  o.entries.push(e);
  if (!old && op !== S.current && (e.kind === "message")) o.unread++;
  if (!old && e.kind === "message" && e.type === "task" && e.priority === "flash") toast(`FLASH task in ${op}: ${e.text}`);
  if (op === S.current) $("entries").append(entryEl(e));
  if (e.kind === "commit") refreshInfo(op);
}

async function refreshInfo(op) {
  const o = S.ops.get(op);
  try { o.info = await liaison.open(op); } catch (err) { return; }
  if (op === S.current) renderHeader();
}

function renderOps() {
  const ul = $("ops");
  ul.replaceChildren();
  for (const [op, o] of [...S.ops.entries()].sort()) {
    const li = el("li", { class: op === S.current ? "active" : "", "data-op": op },
      el("span", { class: "name", textContent: op }),
      o.unread ? el("span", { class: "badge unread", textContent: String(o.unread) }) : null);
    li.addEventListener("click", () => selectOp(op));
    ul.append(li);
  }
}

function selectOp(op) {
  S.current = op;
  const o = S.ops.get(op);
  o.unread = 0;
  renderOps();
  renderOp();
  document.body.classList.add("op-open");
}

function renderHeader() {
  const o = S.ops.get(S.current);
  const i = o.info || {};
  $("op-title").textContent = S.current;
  $("op-info").textContent = i.member
    ? `you are ${i.role} · ${i.members} members · epoch ${i.epoch}` + (i.anomalies ? ` · ${i.anomalies} anomalies` : "")
    : "you are not a member yet: give your identity token to the centre";
  const staff = i.role === "centre" || i.role === "admin";
  $("board-tab").hidden = !staff;
  $("task-form").hidden = !staff;
  $("add-form").hidden = i.role !== "admin";
  $("compose").hidden = !i.member;
}

function renderOp() {
  $("op-pane").hidden = false;
  renderHeader();
  const o = S.ops.get(S.current);
  $("entries").replaceChildren(...o.entries.map(entryEl));
  afterEntries();
  showTab(S.tab);
}

function afterEntries() {
  const list = $("entries");
  list.scrollTop = list.scrollHeight;
  if (S.tab === "tasks" || S.tab === "board") renderTasks();
}

function entryEl(e) {
  const li = el("li", { class: "entry " + e.kind, "data-seq": String(e.seq), "data-kind": e.kind });
  if (e.kind === "commit") {
    li.append(el("span", { class: "summary", textContent: e.summary }));
  } else if (e.kind === "message" || e.kind === "own") {
    li.append(
      el("span", { class: "who", textContent: e.kind === "own" ? "you" : e.sender, title: e.fingerprint }),
      el("span", { class: "mark ok", title: "signature verified against the operation's roster", textContent: "✓" }),
      el("time", { textContent: fmtTime(e.time) }),
      el("span", { class: "text", textContent: entryText(e) }));
    if (e.type === "task") li.classList.add("task-entry", e.priority || "routine");
  } else {
    const what = { "before-join": "sent before you joined", "not-member": "sent while you were not a member", rejected: "rejected" }[e.kind] || e.kind;
    li.append(el("span", { class: "mark bad", title: "not verified", textContent: "⚠" }), el("span", { class: "text", textContent: "unverified: " + what }));
  }
  for (const w of e.warnings || []) li.append(el("div", { class: "warning", textContent: "⚠ " + w }));
  return li;
}

function entryText(e) {
  if (e.type === "chat" || !e.type) return e.text;
  if (e.type === "task") return `TASK (${e.priority || "routine"}): ${e.text}`;
  if (e.type === "ack") return `acknowledged a task: ${e.state}` + (e.text ? ` — ${e.text}` : "");
  return `[${e.type}] ${e.text}`;
}

function showTab(tab) {
  S.tab = tab;
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b.dataset.tab === tab);
  for (const t of ["chat", "tasks", "board", "members"]) $("tab-" + t).hidden = t !== tab;
  if (tab === "members") renderMembers();
  if (tab === "tasks" || tab === "board") renderTasks();
}

for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => showTab(b.dataset.tab));

async function renderMembers() {
  const op = S.current;
  try {
    const ms = await liaison.members(op);
    $("members").replaceChildren(...ms.map((m) => el("li", { "data-name": m.name },
      el("strong", { textContent: m.self ? m.name + " (you)" : m.name }), " ",
      el("span", { class: "role", textContent: m.role }),
      el("div", { class: "hint", textContent: "fingerprint " + m.fingerprint }),
      m.safety ? el("div", { class: "safety", textContent: "safety number " + m.safety }) : null)));
    const v = await liaison.verifyCode(op);
    $("verify-code").textContent = `epoch ${v.epoch}: ${v.code}`;
  } catch (err) {
    $("members").replaceChildren(el("li", { textContent: err.message }));
  }
}

// Tasking. The Go client computes every task's status from the signed
// log (acknowledgements) and the relay's delivery table; the page draws it.
let tasksBusy = false, tasksAgain = false;
async function renderTasks() {
  if (!S.current || !liaison.tasks) return;
  if (tasksBusy) { tasksAgain = true; return; }
  tasksBusy = true;
  const op = S.current;
  try {
    const ts = await liaison.tasks(op);
    ts.sort((a, b) => (b.rank - a.rank) || (b.seq - a.seq)); // flash on top, newest first
    if (op === S.current) { drawTasks(ts); drawBoard(ts); }
  } catch (err) {
    toast("tasks: " + err.message);
  } finally {
    tasksBusy = false;
    if (tasksAgain) { tasksAgain = false; renderTasks(); }
  }
}

function taskHead(t) {
  return el("div", { class: "head" },
    el("span", { class: "prio", textContent: t.priority }),
    el("span", { class: "from", textContent: t.sender + " · " + fmtTime(t.sentAt) + (t.due ? " · due " + fmtTime(t.due) : "") }));
}

function drawTasks(ts) {
  const pending = ts.filter((t) => !t.mine && !t.myState).length;
  $("task-count").textContent = pending ? String(pending) : "";
  $("tasks").replaceChildren(...ts.map((t) => {
    const li = el("li", { class: `task ${t.priority}` + (t.myState ? " acked" : ""), "data-task": t.id, "data-state": t.myState || "" },
      taskHead(t), el("div", { class: "text", textContent: t.text }));
    if (t.mine) {
      li.append(el("div", { class: "hint", textContent: `sent by you · ${t.acked}/${t.members.length} acknowledged` }));
    } else {
      if (t.myState) li.append(el("div", { class: "state", textContent: "you answered: " + t.myState }));
      const row = el("div", { class: "acks" });
      for (const st of t.myState ? ["done", "unable"] : ["received", "done", "unable"]) {
        if (st === t.myState) continue;
        const b = el("button", { class: "ack-" + st, textContent: st === "received" ? "Acknowledge" : st === "done" ? "Done" : "Unable" });
        b.addEventListener("click", async () => {
          b.disabled = true;
          try { await liaison.ackTask(S.current, t.id, st); renderTasks(); } catch (err) { toast("not sent: " + err.message); b.disabled = false; }
        });
        row.append(b);
      }
      li.append(row);
    }
    return li;
  }));
}

function names(list) {
  return list.length ? list.join(", ") : "—";
}

function drawBoard(ts) {
  const rows = ts.map((t) => {
    const got = t.members.filter((m) => m.delivered).map((m) => m.name);
    const unknown = t.members.filter((m) => !m.delivered && !m.deliveryKnown).map((m) => m.name);
    const acked = t.members.filter((m) => m.state).map((m) => `${m.name} (${m.state})`);
    const waiting = t.members.filter((m) => !m.state).map((m) => m.name);
    const late = t.members.filter((m) => m.overdue).map((m) => m.name);
    return el("tr", { class: t.priority, "data-task": t.id },
      el("td", { "data-label": "Task" }, el("span", { class: "prio", textContent: t.priority }), " ", t.text,
        el("div", { class: "hint", textContent: t.sender + " · " + fmtTime(t.sentAt) + (t.due ? " · due " + fmtTime(t.due) : "") })),
      el("td", { "data-label": "Received", class: "received" }, `${t.delivered}/${t.members.length} `,
        el("span", { class: "who", textContent: names(got) + (unknown.length ? " · not known: " + unknown.join(", ") : "") })),
      el("td", { "data-label": "Acknowledged", class: "acknowledged" }, `${t.acked}/${t.members.length} `,
        el("span", { class: "who", textContent: names(acked) }),
        waiting.length ? el("span", { class: "who hint", textContent: "waiting: " + waiting.join(", ") }) : null),
      el("td", { "data-label": "Overdue", class: "overdue-cell" + (late.length ? " overdue" : "") }, late.length ? names(late) : "—"));
  });
  $("board").tBodies[0].replaceChildren(...rows);
}

setInterval(() => { if (S.current && (S.tab === "board" || S.tab === "tasks")) renderTasks(); }, 3000);

$("task-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const text = $("task-text").value;
  if (!text.trim()) return;
  const btn = $("task-send");
  busy(btn, true);
  try {
    await liaison.sendTask(S.current, $("task-priority").value, text, +$("task-due").value || 0);
    $("task-text").value = "";
    renderTasks();
  } catch (err) {
    toast("task not sent: " + err.message);
  } finally {
    busy(btn, false);
  }
});

$("compose").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const text = $("text").value;
  if (!text.trim()) return;
  const btn = $("send-btn");
  busy(btn, true);
  try {
    await liaison.send(S.current, text);
    $("text").value = "";
  } catch (err) {
    toast("not sent: " + err.message);
  } finally {
    busy(btn, false);
    $("text").focus();
  }
});

$("open-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const op = $("open-op").value.trim();
  try { await openOp(op, true); $("open-op").value = ""; } catch (err) { toast(op + ": " + err.message); }
});

$("create-op").addEventListener("click", async () => {
  const op = $("open-op").value.trim();
  if (!op) return;
  try { await liaison.createOp(op); await openOp(op, true); $("open-op").value = ""; } catch (err) { toast(op + ": " + err.message); }
});

$("add-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    const name = await liaison.addMember(S.current, $("add-token").value, $("add-role").value);
    $("add-token").value = "";
    toast(name + " added");
    renderMembers();
  } catch (err) { toast(err.message); }
});

boot();
