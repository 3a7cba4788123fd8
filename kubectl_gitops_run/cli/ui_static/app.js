// The sessions page: one server-sent event stream per view; every message is
// the whole view, drawn again. Text goes in with textContent only.
"use strict";

let stream = null;
let current = null;     // the last view received
let nsFilter = "";
let files = { key: null };   // the file list of the detail's snapshot, read on demand

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

// apimachinery's HumanDuration, as `ls` prints AGE
function human(seconds) {
  const s = Math.trunc(seconds);
  if (s < -1) return "<invalid>";
  if (s < 0) return "0s";
  if (s < 120) return `${s}s`;
  const m = Math.trunc(s / 60), h = Math.trunc(s / 3600), d = Math.trunc(h / 24);
  if (m < 10) return s % 60 ? `${m}m${s % 60}s` : `${m}m`;
  if (m < 180) return `${m}m`;
  if (h < 8) return m % 60 ? `${h}h${m % 60}m` : `${h}h`;
  if (h < 48) return `${h}h`;
  if (h < 192) return h % 24 ? `${d}d${h % 24}h` : `${d}d`;
  if (h < 24 * 365 * 2) return `${d}d`;
  return `${Math.trunc(d / 365)}y`;
}

function age(stamp) {
  return stamp ? human((Date.now() - Date.parse(stamp)) / 1000) : "<none>";
}

const shortRev = (rev) => (rev ? rev.replace(/^(sha256:[0-9a-f]{8})[0-9a-f]*$/, "$1") : "<none>");
const cell = (v) => (v === null || v === undefined || v === "" ? "<none>" : v);
// Flux quotes whole digests; the list shows the short form, as `ls` does
const shortDigests = (text) => (text || "").replace(/\b(sha256:[0-9a-f]{8})[0-9a-f]{56}\b/g, "$1");

function table(id, headers, rows) {
  return el("table", { id },
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows));
}

function healthCell(h) {
  return el("td", { class: `health ${h.status}`, title: h.reason || "" }, h.status,
    h.reason ? el("div", { class: "muted" }, h.reason) : null);
}

function drawList(doc) {
  document.getElementById("crumb").textContent = "sessions";
  const select = el("select", { id: "ns-filter" }, el("option", { value: "" }, "all namespaces"),
    doc.namespaces.map((ns) => el("option", { value: ns, selected: ns === nsFilter }, ns)));
  select.addEventListener("change", () => { nsFilter = select.value; draw(); });
  const rows = doc.sessions.filter((s) => !nsFilter || s.namespace === nsFilter).map((s) =>
    el("tr", { "data-session": `${s.namespace}/${s.name}` },
      el("td", {}, s.namespace),
      el("td", {}, el("a", { href: `#/s/${s.namespace}/${s.name}` }, s.name),
        s.lastSyncFailed ? el("span", { class: "marker" }, "last sync failed") : null,
        s.bucketReady ? null : el("span", { class: "marker" }, "bucket server not Ready")),
      el("td", { class: "mono" }, cell(s.source)), el("td", {}, cell(s.files)),
      el("td", { class: "mono" }, shortRev(s.revision)), el("td", {}, cell(s.ready)),
      el("td", { class: "msg", title: s.status || "" }, cell(shortDigests(s.status))),
      el("td", {}, age(s.lastSync)),
      el("td", {}, age(s.created)), el("td", {}, cell(s.host)),
      el("td", {}, cell(s.targetNamespace)), el("td", { class: "mono" }, cell(s.bucketPod)),
      el("td", {}, cell(s.objectsApplied)), healthCell(s.health),
      el("td", { class: "forwards" }, (s.forwards || []).map((f) =>
        el("div", {}, forwardLink(f), ` → ${f.target}`)))));
  const headers = ["NAMESPACE", "NAME", "SOURCE", "FILES", "REVISION", "READY", "STATUS",
    "LAST SYNC", "AGE", "HOST", "TARGET NAMESPACE", "BUCKET POD", "OBJECTS", "HEALTH", "FORWARDS"];
  return [el("div", { class: "toolbar" }, select,
    el("span", { class: "muted" }, `${rows.length} sessions`)),
  rows.length ? table("sessions", headers, rows) : el("p", { class: "muted" }, "No sessions.")];
}

// a forward's local URL: only a loopback http URL becomes a link
function forwardLink(f) {
  const url = String(f.url || "");
  return /^http:\/\/127\.0\.0\.1:\d+\/?$/.test(url)
    ? el("a", { href: url, target: "_blank", rel: "noopener noreferrer", class: "mono" }, url)
    : el("span", { class: "mono" }, cell(url));
}

function forwardsSection(rows) {
  return el("section", { id: "forwards" }, el("h2", {}, "Port-forwards of a running loop"),
    rows.length ? table("forwards-table", ["LOCAL URL", "TARGET", "STATE"], rows.map((f) =>
      el("tr", {}, el("td", {}, forwardLink(f)), el("td", { class: "mono" }, cell(f.target)),
        el("td", { class: String(f.state).startsWith("waiting") ? "InProgress" : "Current" }, cell(f.state)))))
      : el("p", { class: "muted" }, "none: `up --watch --port-forward` or `forward` adds them"));
}

function releaseSection(r) {
  if (!r) return null;
  return el("section", { id: "release" }, el("h2", {}, "Helm release"),
    el("dl", {}, ["release", r.namespace ? `${r.namespace}/${r.name}` : r.name, "status", r.status,
      "revision", r.version, "chart", r.chartName ? `${r.chartName} ${r.chartVersion}` : null,
      "app version", r.appVersion, "deployed", r.lastDeployed]
      .flatMap((v, i, a) => (i % 2 ? [] : [el("dt", {}, v), el("dd", { class: "mono" }, cell(a[i + 1]))]))));
}

function size(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB"];
  let v = bytes / 1024, u = 0;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u += 1; }
  return `${v.toFixed(1)} ${units[u]}`;
}

// Asks the server for the snapshot's files when the detail opens or its revision moves.
function wantFiles(s) {
  const key = `${s.namespace}/${s.name}@${s.revision || ""}`;
  if (files.key === key) return;
  files = { key, doc: files.doc && files.key.startsWith(`${s.namespace}/${s.name}@`) ? files.doc : null };
  const query = `namespace=${encodeURIComponent(s.namespace)}&name=${encodeURIComponent(s.name)}`;
  call("GET", `/api/files?${query}`)
    .then((doc) => { if (files.key === key) { files = { key, doc }; draw(); } })
    .catch((e) => { if (files.key === key) { files = { key, doc: files.doc, error: e.message }; draw(); } });
}

function filesSection() {
  const head = el("h2", {}, "Files of the current snapshot");
  const doc = files.doc;
  if (!doc) return el("section", { id: "files" }, head, el("p", { class: "muted" },
    files.error ? `cannot read them: ${files.error}` : "reading the bucket server..."));
  const changed = doc.files.filter((f) => f.change && !f.generated).length;
  const summary = `${doc.count} files` + (doc.generated ? ` and ${doc.generated} written by gitops-run` : "") +
    `, ${size(doc.bytes)}; ${changed} added or changed and ` +
    `${doc.removed.length} removed in the last sync` + (doc.shown < doc.count ? ` (first ${doc.shown} shown)` : "");
  return el("section", { id: "files" }, head,
    el("p", { class: "muted" }, doc.problem || summary),
    files.error ? el("p", { class: "Failed" }, `not current: ${files.error}`) : null,
    table("files-table", ["PATH", "SIZE", "LAST SYNC"], doc.files.map((f) =>
      el("tr", { "data-file": f.path, class: f.generated ? "generated" : "" }, el("td", { class: "mono" }, f.path,
        f.generated ? el("span", { class: "muted" }, " (written by gitops-run for the session)") : null),
        el("td", {}, size(f.size)), el("td", { class: f.change ? "InProgress" : "muted" }, f.change || "")))),
    doc.removed.length ? el("p", { id: "files-removed", class: "muted" },
      `removed: ${doc.removed.join(", ")}`) : null);
}

function conditionsTable(kind, conditions) {
  return el("section", {}, el("h2", {}, `${kind} conditions`),
    table(`conditions-${kind}`, ["TYPE", "STATUS", "REASON", "MESSAGE", "SINCE"],
      conditions.map((c) => el("tr", {}, el("td", {}, c.type), el("td", {}, c.status),
        el("td", {}, cell(c.reason)), el("td", { class: "msg" }, cell(c.message)),
        el("td", {}, age(c.lastTransitionTime))))));
}

function podLine(p) {
  return el("div", { class: "pod" }, el("span", { class: "mono" }, p.name), ` ${cell(p.phase)}`,
    p.ready ? " Ready" : "", p.waitingReason ? el("span", { class: "marker" }, p.waitingReason) : null);
}

function detailSections(doc) {
  const s = doc.session;
  const who = el("dl", {}, ["source", s.source, "path", s.path, "host", s.host, "user", s.user,
    "target namespace", s.targetNamespace, "created", s.created, "Flux artifact",
    doc.revisions.bucket, "applied", doc.revisions.applied, "attempted", doc.revisions.attempted]
    .flatMap((v, i, a) => (i % 2 ? [] : [el("dt", {}, v), el("dd", { class: "mono" }, cell(a[i + 1]))])));
  const pod = doc.bucketPod;
  const history = doc.history.map((h) => el("tr", { class: h.ok ? "" : "failed" },
    el("td", {}, age(h.time)), el("td", { class: h.ok ? "Current" : "Failed" }, h.ok ? "Synced" : "SyncFailed"),
    el("td", { class: "mono" }, h.ok ? shortRev(h.revision) : ""),
    el("td", {}, h.ok ? `+${h.added} ~${h.changed} -${h.removed}` : ""), el("td", {}, cell(h.user)),
    el("td", { class: "msg" }, h.message)));
  const inventory = doc.inventory.map((o) => el("tr", { "data-object": o.id },
    el("td", {}, o.kind), el("td", {}, o.namespace || ""), el("td", {}, o.name),
    healthCell(o.health), el("td", {}, o.pods.map(podLine))));
  const events = doc.events.map((e) => el("tr", {}, el("td", {}, age(e.time)), el("td", {}, e.type),
    el("td", {}, e.reason), el("td", {}, e.object), el("td", { class: "msg" }, e.message)));
  const failed = doc.failure;
  return [
    failed ? el("section", { id: "failing", class: "failing" },
      el("h2", {}, failed.object ? `Flux could not apply ${failed.object}` : `${doc.deployer} not Ready`),
      el("p", { class: "msg" }, shortDigests(failed.message))) : null,
    el("section", {}, el("h2", {}, "Who and where"), who),
    el("section", { id: "bucket-pod" }, el("h2", {}, "Bucket server"),
      pod ? podLine(pod) : el("p", { class: "muted" }, "no pod"),
      pod && pod.problem ? el("p", { class: "Failed" }, pod.problem) : null),
    forwardsSection(s.forwards || []),
    conditionsTable("Bucket", doc.conditions.Bucket),
    conditionsTable(doc.deployer, doc.conditions[doc.deployer]),
    releaseSection(doc.release),
    el("section", {}, el("h2", {}, "Sync history"),
      table("history", ["WHEN", "RESULT", "REVISION", "FILES", "BY", "MESSAGE"], history)),
    el("section", {}, el("h2", {}, "Inventory"),
      table("inventory", ["KIND", "NAMESPACE", "NAME", "HEALTH", "PODS"], inventory)),
    filesSection(),
    el("section", {}, el("h2", {}, "Events"),
      table("events", ["WHEN", "TYPE", "REASON", "OBJECT", "MESSAGE"], events)),
  ];
}

function drawDetail(doc) {
  document.getElementById("crumb").textContent = `${doc.namespace || doc.session.namespace} / ${doc.name || doc.session.name}`;
  if (!doc.found) return [el("p", { id: "gone" }, `Session ${doc.namespace}/${doc.name} not found (deleted?). `,
    el("a", { href: "#/" }, "All sessions"))];
  const s = doc.session;
  wantFiles(s);
  const target = { namespace: s.namespace, name: s.name };
  const buttons = el("div", { class: "toolbar" },
    doc.canSync ? el("button", { id: "action-sync" }, "Sync now") : null,
    el("button", { id: "action-reconcile" }, "Reconcile"),
    el("button", { id: "action-delete", class: "danger" }, "Delete"));
  buttons.addEventListener("click", (ev) => {
    const id = ev.target.id;
    if (id === "action-sync") act("sync", target, `Syncing ${s.name}...`);
    if (id === "action-reconcile") act("reconcile", target, `Asking Flux to reconcile ${s.name}...`);
    if (id === "action-delete") confirmDelete(target);
  });
  return [el("h1", {}, s.name, " ", el("span", { class: `health ${s.health.status}` }, s.health.status),
    s.lastSyncFailed ? el("span", { class: "marker" }, "last sync failed") : null,
    s.bucketReady ? null : el("span", { class: "marker" }, "bucket server not Ready")),
  buttons, ...detailSections(doc)];
}

function notice(text, failed) {
  const box = document.getElementById("notice");
  box.hidden = false;
  box.textContent = text;
  box.className = failed ? "failed" : "";
}

async function call(method, url, body) {
  const init = { method, headers: {} };
  if (body) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
  const resp = await fetch(url, init);
  const doc = await resp.json().catch(() => ({ error: `HTTP ${resp.status}` }));
  if (!resp.ok) throw new Error(doc.error || `HTTP ${resp.status}`);
  return doc;
}

async function act(action, target, pending) {
  notice(pending, false);
  document.querySelectorAll(".toolbar button").forEach((b) => { b.disabled = true; });
  try {
    notice((await call("POST", `/api/${action}`, target)).message, false);
  } catch (e) {
    notice(`${action} failed: ${e.message}`, true);
  } finally {
    document.querySelectorAll(".toolbar button").forEach((b) => { b.disabled = false; });
  }
}

async function confirmDelete(target) {
  let plan;
  try {
    plan = await call("GET", `/api/plan?namespace=${encodeURIComponent(target.namespace)}&name=${encodeURIComponent(target.name)}`);
  } catch (e) { notice(`cannot plan the delete: ${e.message}`, true); return; }
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-title").textContent = `Delete session ${target.namespace}/${target.name}?`;
  document.getElementById("confirm-text").textContent =
    `This deletes ${plan.objects.length} objects of the session; Flux prunes ${plan.pruned.length} objects it applied` +
    (plan.kept.length ? ` and keeps ${plan.kept.length}.` : ".");
  document.getElementById("confirm-list").replaceChildren(
    ...plan.pruned.map((r) => el("li", {}, `prune ${r}`)),
    ...plan.kept.map(([r, why]) => el("li", {}, `keep ${r}: ${why}`)));
  dialog.onclose = () => {
    if (dialog.returnValue === "delete") act("delete", target, `Deleting ${target.name}...`);
  };
  document.getElementById("confirm-delete").onclick = () => dialog.close("delete");
  document.getElementById("confirm-cancel").onclick = () => dialog.close("cancel");
  dialog.showModal();
}

function draw() {
  if (!current) return;
  const errors = document.getElementById("errors");
  errors.hidden = !current.errors.length;
  errors.textContent = current.errors.join("\n");
  const main = document.getElementById("main");
  main.replaceChildren(...(current.view === "list" ? drawList(current) : drawDetail(current))
    .filter((node) => node));   // sections that have nothing to show are null
}

function route() {
  const m = location.hash.match(/^#\/s\/([^/]+)\/([^/]+)$/);
  const query = m ? `view=session&namespace=${encodeURIComponent(m[1])}&name=${encodeURIComponent(m[2])}` : "view=list";
  if (stream) stream.close();
  current = null;
  document.getElementById("main").replaceChildren();
  const live = document.getElementById("live");
  stream = new EventSource(`/api/events?${query}`);
  stream.onopen = () => { live.textContent = "live"; live.className = "live"; };
  stream.onerror = () => { live.textContent = "reconnecting"; live.className = "live off"; };
  stream.onmessage = (ev) => { current = JSON.parse(ev.data); draw(); };
}

window.addEventListener("hashchange", () => { document.getElementById("notice").hidden = true; route(); });
route();
setInterval(draw, 5000);    // ages move on; no request is made
