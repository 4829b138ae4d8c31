// tlog's web explorer. Everything it shows as "verified" is checked here, in the browser, with WebCrypto:
// - the checkpoint note: C2SP signed-note Ed25519 signature (type 0x01) and the log's timestamped C2SP
//   tlog-cosignature (type 0x04), both with the log's verifier key;
// - the shown entry's inclusion proof (RFC 9162 §2.1.3.2) against that checkpoint's root, from the leaf hash
//   computed here from the entry's bytes;
// - the consistency proof (RFC 9162 §2.1.4.2) from the checkpoint this browser saw last (kept in localStorage).
// The server's answers are inputs to those checks, never taken on trust. Untrusted text is only ever inserted
// with textContent. Sizes and indices are BigInt: JS bit operators work on 32 bits.

const enc = new TextEncoder();
const RECENT = 20n;

// ---- bytes ----

function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function fromHex(text) {
  if (!/^([0-9a-fA-F]{2})*$/.test(text)) throw new Error(`not hex: ${text.slice(0, 80)}`);
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function fromBase64(text) {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) throw new Error("not base64");
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function equal(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

// ---- RFC 9162 §2.1 ----

const leafHash = (entry) => sha256(concat(Uint8Array.of(0), entry));
const nodeHash = (left, right) => sha256(concat(Uint8Array.of(1), left, right));

// §2.1.3.2: verifying an inclusion proof. Throws naming what is wrong.
async function verifyInclusion(index, size, leaf, proof, root) {
  if (index >= size) throw new Error(`leaf index ${index} is not below tree size ${size}`);
  let fn = index;
  let sn = size - 1n;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0n) throw new Error("inclusion proof is longer than the tree allows");
    if ((fn & 1n) === 1n || fn === sn) {
      r = await nodeHash(p, r);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new Error("inclusion proof is shorter than the tree needs");
  if (!equal(r, root)) throw new Error("inclusion proof does not lead to the checkpoint's root");
}

// §2.1.4.2: verifying a consistency proof between trees of size first <= second. Throws naming what is wrong.
async function verifyConsistency(first, second, firstRoot, secondRoot, proof) {
  if (first === 0n || first > second) throw new Error(`no consistency proof from size ${first} to ${second}`);
  if (first === second) {
    if (proof.length !== 0) throw new Error("a proof between equal sizes must be empty");
    if (!equal(firstRoot, secondRoot)) throw new Error(`two different roots for tree size ${first}: a fork`);
    return;
  }
  if (proof.length === 0) throw new Error("empty consistency proof");
  const path = (first & (first - 1n)) === 0n ? [firstRoot, ...proof] : proof;
  let fn = first - 1n;
  let sn = second - 1n;
  while ((fn & 1n) === 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0n) throw new Error("consistency proof is longer than the trees allow");
    if ((fn & 1n) === 1n || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new Error("consistency proof is shorter than the trees need");
  if (!equal(fr, firstRoot)) throw new Error(`consistency proof does not lead to the root of size ${first}`);
  if (!equal(sr, secondRoot)) throw new Error(`consistency proof does not lead to the root of size ${second}`);
}

// ---- C2SP signed-note, tlog-checkpoint, tlog-cosignature ----

const ED25519 = 0x01;
const COSIGNATURE = 0x04;

async function keyId(name, type, publicKey) {
  return (await sha256(concat(enc.encode(name + "\n"), Uint8Array.of(type), publicKey))).slice(0, 4);
}

// `<name>+<8 hex key ID>+<base64(0x01 || 32-byte key)>`, its key ID checked. Names have no `+`, base64 may.
async function parseVerifierKey(text) {
  const match = text.match(/^([^+]+)\+([0-9a-f]{8})\+(.+)$/s);
  if (!match) throw new Error(`malformed verifier key ${text}`);
  const [, name, id, key] = match;
  const raw = fromBase64(key);
  if (raw.length !== 33 || raw[0] !== ED25519) throw new Error("verifier key is not an Ed25519 key");
  const publicKey = raw.slice(1);
  if (hex(await keyId(name, ED25519, publicKey)) !== id) throw new Error("verifier key's ID does not match its key");
  const cryptoKey = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
  return {
    text,
    name,
    id: fromHex(id),
    cosignatureId: await keyId(name, COSIGNATURE, publicKey),
    cryptoKey,
  };
}

function parseNote(note) {
  const split = note.indexOf("\n\n");
  if (split < 0 || !note.endsWith("\n")) throw new Error("not a signed note (no blank line before signatures)");
  const text = note.slice(0, split + 1);
  const signatures = note
    .slice(split + 2, -1)
    .split("\n")
    .map((line) => {
      const parts = line.split(" ");
      if (parts.length !== 3 || parts[0] !== "—") throw new Error(`malformed signature line: ${line}`);
      const blob = fromBase64(parts[2]);
      if (blob.length < 5) throw new Error(`signature line too short: ${line}`);
      return { name: parts[1], id: blob.slice(0, 4), sig: blob.slice(4) };
    });
  return { text, signatures };
}

function parseCheckpoint(text) {
  const lines = text.split("\n");
  const [origin, size, root] = lines;
  if (lines.length < 4 || !origin) throw new Error("checkpoint body has fewer than three lines");
  if (!/^(0|[1-9][0-9]*)$/.test(size)) throw new Error(`checkpoint size ${size} is not a decimal number`);
  const rootBytes = fromBase64(root);
  if (rootBytes.length !== 32) throw new Error("checkpoint root is not 32 bytes");
  return { origin, size: BigInt(size), root: rootBytes };
}

const ed25519Verify = (key, sig, message) => crypto.subtle.verify({ name: "Ed25519" }, key, sig, message);

// Verifies the log's checkpoint note as tlogd signs it (and as tlog-checkpoint's `verify_checkpoint` does): every
// Ed25519 line of the log's key verifies (at least one), exactly one timestamped cosignature of the log's key
// verifies, and the origin is the key's name. Other signers' lines (witnesses) are listed, not trusted.
async function verifyCheckpoint(noteText, key) {
  const note = parseNote(noteText);
  const body = enc.encode(note.text);
  const rows = [];
  let signed = 0;
  let timestamp = null;
  for (const s of note.signatures) {
    const row = { name: s.name, id: hex(s.id), kind: "unknown signer", checked: "ignored", ok: null };
    rows.push(row);
    if (s.name === key.name && equal(s.id, key.id)) {
      row.kind = "log signature (Ed25519)";
      if (s.sig.length !== 64 || !(await ed25519Verify(key.cryptoKey, s.sig, body))) {
        row.checked = "INVALID";
        row.ok = false;
        throw Object.assign(new Error("the log's signature on the checkpoint does not verify"), { rows });
      }
      row.checked = "verified";
      row.ok = true;
      signed++;
    } else if (s.name === key.name && equal(s.id, key.cosignatureId)) {
      row.kind = "log timestamp (tlog-cosignature)";
      const ts = cosignatureTime(s.sig);
      const message = concat(enc.encode(`cosignature/v1\ntime ${ts}\n`), body);
      if (ts === null || !(await ed25519Verify(key.cryptoKey, s.sig.slice(8), message))) {
        row.checked = "INVALID";
        row.ok = false;
        throw Object.assign(new Error("the log's timestamped cosignature does not verify"), { rows });
      }
      if (timestamp !== null) throw Object.assign(new Error("two timestamps from the log's key"), { rows });
      timestamp = ts;
      row.checked = `verified (${new Date(Number(ts) * 1000).toISOString()})`;
      row.ok = true;
    } else {
      const ts = s.sig.length === 72 ? cosignatureTime(s.sig) : null;
      row.kind = ts === null ? "other signer" : "witness cosignature";
      row.checked = ts === null ? "not checked (unknown key)" : `not checked (no witness keys here), time ${ts}`;
    }
  }
  if (signed === 0) throw Object.assign(new Error(`no signature by the log's key ${key.text}`), { rows });
  if (timestamp === null) throw Object.assign(new Error("no timestamp signed by the log's key"), { rows });
  const checkpoint = parseCheckpoint(note.text);
  if (checkpoint.origin !== key.name) {
    throw Object.assign(new Error(`checkpoint origin ${checkpoint.origin} is not the key's ${key.name}`), { rows });
  }
  return { ...checkpoint, timestamp, rows, note: noteText };
}

// A cosignature's big-endian u64 timestamp (before its 64-byte signature), as a decimal string.
function cosignatureTime(sig) {
  if (sig.length !== 72) return null;
  return new DataView(sig.buffer, sig.byteOffset, 8).getBigUint64(0).toString();
}

// ---- talking to tlogd ----

async function getJson(path) {
  const response = await fetch(path, { cache: "no-store" });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const message = body?.error ? `${body.error} (HTTP ${response.status})` : `HTTP ${response.status} for ${path}`;
    // A 4xx is the log saying no (no such entry, a bad query): nothing was shown, so nothing failed to verify.
    throw Object.assign(new Error(message), { refused: response.status >= 400 && response.status < 500 });
  }
  if (body === null) throw new Error(`${path} did not answer JSON`);
  return body;
}

async function getText(path) {
  const response = await fetch(path, { cache: "no-store" });
  if (!response.ok) throw new Error(`HTTP ${response.status} for ${path}`);
  return response.text();
}

const hashes = (list) => {
  if (!Array.isArray(list)) throw new Error("the proof is not a list of hashes");
  return list.map((h) => {
    const bytes = fromHex(h);
    if (bytes.length !== 32) throw new Error("a proof hash is not 32 bytes");
    return bytes;
  });
};

// ---- page state ----

const $ = (id) => document.getElementById(id);
const checks = { checkpoint: ["pending", "checkpoint"], consistency: ["pending", "consistency"] };
let key = null;
let current = null; // the verified checkpoint
let loads = 0; // the newest load; an older one drops its results
let lookups = 0; // the newest lookup, likewise

function setState(element, state, text) {
  element.dataset.state = state;
  element.textContent = text;
}

// One check's state, and the banner: red naming every failed check, else grey while any is pending, else green
// ("info": nothing to verify, e.g. a lookup the log answered with not found).
function check(name, elementId, state, text) {
  checks[name] = [state, text];
  setState($(elementId), state, text);
  const failed = Object.values(checks).filter(([s]) => s === "bad");
  if (failed.length) {
    setState($("status"), "bad", `NOT VERIFIED: ${failed.map(([, t]) => t).join("; ")}`);
  } else if (Object.values(checks).some(([s]) => s === "pending")) {
    setState($("status"), "pending", "verifying…");
  } else {
    setState($("status"), "ok", "verified");
  }
}

const storageKey = (origin) => `tlog-explorer:${origin}`;

function remembered(origin) {
  try {
    return JSON.parse(localStorage.getItem(storageKey(origin)) ?? "null");
  } catch {
    return null;
  }
}

function remember(cp) {
  localStorage.setItem(
    storageKey(cp.origin),
    JSON.stringify({ key: key.text, size: cp.size.toString(), root: hex(cp.root), seen: new Date().toISOString() }),
  );
}

// The checkpoint this browser saw before (same origin) against the one just verified.
async function checkConsistency(cp) {
  const seen = remembered(cp.origin);
  if (seen === null) {
    remember(cp);
    return `first visit: this browser now remembers tree size ${cp.size}`;
  }
  if (seen.key !== key.text) {
    throw new Error(`the log's key is ${key.text}, but this browser saw ${seen.key} before`);
  }
  const size = BigInt(seen.size);
  const root = fromHex(seen.root);
  if (size === 0n || cp.size === 0n) {
    // No consistency proof involves the empty tree: every tree extends it, and no tree shrinks back to it.
    if (cp.size === 0n && size !== 0n) {
      throw new Error(`the log shows an empty tree, but this browser saw size ${size}`);
    }
    remember(cp);
    return `the tree seen on ${seen.seen} was empty; this browser now remembers tree size ${cp.size}`;
  }
  if (size === cp.size) {
    await verifyConsistency(size, size, root, cp.root, []);
    return `same tree as seen on ${seen.seen} (size ${size})`;
  }
  // The checkpoint served may be older than the one seen (a witnessed checkpoint lags the log's newest).
  const [old, oldRoot, neu, newRoot] =
    size < cp.size ? [size, root, cp.size, cp.root] : [cp.size, cp.root, size, root];
  const answer = await getJson(`v1/proof/consistency?old=${old}&new=${neu}`);
  await verifyConsistency(old, neu, oldRoot, newRoot, hashes(answer.proof));
  if (size < cp.size) remember(cp);
  return `tree size ${old} (seen ${seen.seen}) is a prefix of tree size ${neu}: consistency proof verified`;
}

function showCheckpoint(cp, rows) {
  $("cp-size").textContent = cp ? cp.size.toString() : "";
  $("cp-root").textContent = cp ? hex(cp.root) : "";
  $("cp-time").textContent = cp ? new Date(Number(cp.timestamp) * 1000).toISOString() : "";
  const body = $("cp-sigs");
  body.replaceChildren();
  for (const row of rows ?? []) {
    const tr = document.createElement("tr");
    for (const text of [row.name, row.id, row.kind, row.checked]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    if (row.ok !== null) tr.dataset.state = row.ok ? "ok" : "bad";
    body.append(tr);
  }
}

async function load() {
  const mine = ++loads;
  const stale = () => mine !== loads;
  current = null;
  delete checks.inclusion;
  $("entry-view").hidden = true;
  check("checkpoint", "cp-state", "pending", "checking the checkpoint signature…");
  check("consistency", "consistency-state", "pending", "waiting for the checkpoint");
  let cp;
  try {
    if (!globalThis.crypto?.subtle) {
      throw new Error("this page has no WebCrypto here: open it over HTTPS or on localhost");
    }
    const config = await getJson("v1/explorer/config");
    key = await parseVerifierKey(config.verifier_key);
    $("origin").textContent = key.name;
    $("key").textContent = key.text;
    $("key-source").textContent = "(as configured in tlogd: GET v1/explorer/config)";
    const note = await getText("checkpoint");
    $("cp-note").textContent = note;
    cp = await verifyCheckpoint(note, key);
    if (stale()) return;
    showCheckpoint(cp, cp.rows);
    check("checkpoint", "cp-state", "ok", `checkpoint signature verified (size ${cp.size})`);
  } catch (e) {
    if (stale()) return;
    showCheckpoint(null, e.rows);
    check("checkpoint", "cp-state", "bad", `checkpoint: ${e.message}`);
    check("consistency", "consistency-state", "bad", "consistency: not checked (no verified checkpoint)");
    return;
  }
  current = cp;
  const wanted = location.hash.match(/^#entry=(.+)$/);
  if (wanted || cp.size > 0n) {
    // Shown below: the banner stays grey until its proof is checked too.
    check("inclusion", "entry-state", "pending", "waiting for the entry");
  }
  try {
    const text = await checkConsistency(cp);
    if (stale()) return;
    check("consistency", "consistency-state", "ok", text);
  } catch (e) {
    if (stale()) return;
    check("consistency", "consistency-state", "bad", `consistency: ${e.message}`);
  }
  await listRecent(cp, mine);
  if (stale()) return;
  if (wanted) {
    await lookup(decodeURIComponent(wanted[1]));
  } else if (cp.size > 0n) {
    await lookup((cp.size - 1n).toString());
  }
}

function decode(bytes) {
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    try {
      return { text: JSON.stringify(JSON.parse(text), null, 2), kind: "JSON" };
    } catch {
      return { text, kind: "text" };
    }
  } catch {
    const shown = bytes.slice(0, 4096);
    const lines = [];
    for (let i = 0; i < shown.length; i += 32) lines.push(hex(shown.slice(i, i + 32)));
    if (bytes.length > shown.length) lines.push(`… (${bytes.length - shown.length} more bytes)`);
    return { text: lines.join("\n"), kind: "binary" };
  }
}

async function listRecent(cp, mine) {
  const stale = () => mine !== loads;
  const body = $("entries");
  body.replaceChildren();
  if (cp.size === 0n) return;
  const start = cp.size > RECENT ? cp.size - RECENT : 0n;
  try {
    const answer = await getJson(`v1/entries?start=${start}&end=${cp.size}`);
    if (stale()) return;
    for (const e of [...answer.entries].reverse()) {
      const tr = document.createElement("tr");
      const { text } = decode(fromBase64(e.entry));
      for (const [cell, cls] of [[String(e.index), ""], [e.leaf_hash.slice(0, 16) + "…", ""], [text, "preview"]]) {
        const td = document.createElement("td");
        td.textContent = cell;
        if (cls) td.className = cls;
        tr.append(td);
      }
      tr.addEventListener("click", () => lookup(String(e.index)));
      body.append(tr);
    }
  } catch (e) {
    const tr = document.createElement("tr");
    const td = document.createElement("td");
    td.colSpan = 3;
    td.textContent = `could not list entries: ${e.message}`;
    tr.append(td);
    body.append(tr);
  }
}

// Shows entry `query` (an index or a leaf hash) and verifies its inclusion in the verified checkpoint.
async function lookup(query) {
  query = query.trim();
  if (!current) return;
  const cp = current;
  const mine = ++lookups;
  const stale = () => mine !== lookups || current !== cp;
  $("entry-view").hidden = false;
  $("entry-index").textContent = "";
  $("entry-leaf").textContent = "";
  $("entry-size").textContent = "";
  $("entry-body").textContent = "";
  $("entry-proof").replaceChildren();
  check("inclusion", "entry-state", "pending", `looking up ${query}…`);
  try {
    let proof;
    if (/^[0-9a-fA-F]{64}$/.test(query)) {
      proof = await getJson(`v1/proof/inclusion?leaf_hash=${query.toLowerCase()}&size=${cp.size}`);
    } else if (/^(0|[1-9][0-9]*)$/.test(query)) {
      proof = await getJson(`v1/proof/inclusion?index=${query}&size=${cp.size}`);
    } else {
      throw Object.assign(new Error("give an entry index or a 64-hex-digit leaf hash"), { refused: true });
    }
    const index = BigInt(proof.index);
    const entry = await getJson(`v1/entry/${index}`);
    if (stale()) return;
    const bytes = fromBase64(entry.entry);
    const leaf = await leafHash(bytes);
    const { text, kind } = decode(bytes);
    $("entry-index").textContent = index.toString();
    $("entry-leaf").textContent = hex(leaf);
    $("entry-size").textContent = `${bytes.length} bytes (${kind})`;
    $("entry-body").textContent = text;
    for (const h of proof.proof) {
      const li = document.createElement("li");
      li.textContent = h;
      $("entry-proof").append(li);
    }
    history.replaceState(null, "", `#entry=${index}`);
    if (BigInt(entry.index) !== index) throw new Error(`asked for entry ${index}, got entry ${entry.index}`);
    if (/^[0-9a-fA-F]{64}$/.test(query) && hex(leaf) !== query.toLowerCase()) {
      throw new Error(`entry ${index} does not hash to the leaf hash looked up`);
    }
    if (BigInt(proof.tree_size) !== cp.size) {
      throw new Error(`proof is for tree size ${proof.tree_size}, not ${cp.size}`);
    }
    await verifyInclusion(index, cp.size, leaf, hashes(proof.proof), cp.root);
    if (stale()) return;
    const included = `entry ${index} is included in the checkpoint of size ${cp.size}: proof verified`;
    check("inclusion", "entry-state", "ok", included);
  } catch (e) {
    if (stale()) return;
    if (e.refused) {
      check("inclusion", "entry-state", "info", `entry ${query}: not found: ${e.message}`);
    } else {
      check("inclusion", "entry-state", "bad", `entry ${query}: ${e.message}`);
    }
  }
}

addEventListener("DOMContentLoaded", () => {
  $("lookup").addEventListener("submit", (event) => {
    event.preventDefault();
    lookup($("lookup-input").value);
  });
  $("refresh").addEventListener("click", () => load());
  load();
});
