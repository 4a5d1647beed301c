// IndexedDB: the settings, the verified bundle's raw JSON, the replay
// memory, and a shelter's roster.  The bundle is stored as the same dualres-bundle/1 JSON the CLI
// writes and is re-verified against the pinned anchor on every start.

const DB = 'dualres-verify';
// 2: the shelter's roster.  Each step creates only what is missing, so a
// device that ran version 1 keeps its settings, bundle and replay memory.
const VERSION = 2;

function req(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

export function openDb(name = DB) {
  const open = indexedDB.open(name, VERSION);
  open.onupgradeneeded = () => {
    const db = open.result;
    const has = (n) => db.objectStoreNames.contains(n);
    if (!has('kv')) db.createObjectStore('kv');
    if (!has('replay')) {
      const replay = db.createObjectStore('replay', { keyPath: 'h' });
      replay.createIndex('until', 'until');
    }
    if (!has('roster')) db.createObjectStore('roster', { autoIncrement: true });
  };
  return req(open);
}

function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
}

// The shelter roster, in check-in order.
export async function addToRoster(db, entry) {
  const tx = db.transaction('roster', 'readwrite');
  tx.objectStore('roster').add(entry);
  return done(tx);
}

export async function readRoster(db) {
  return req(db.transaction('roster').objectStore('roster').getAll());
}

export async function clearRoster(db) {
  const tx = db.transaction('roster', 'readwrite');
  tx.objectStore('roster').clear();
  return done(tx);
}

export async function getKv(db, key) {
  return req(db.transaction('kv').objectStore('kv').get(key));
}

export async function setKv(db, key, value) {
  const tx = db.transaction('kv', 'readwrite');
  tx.objectStore('kv').put(value, key);
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
  });
}

// UTF-8 with lone surrogates kept as their 3-byte form, which is what
// Python's "surrogatepass" gives: the same nonce gets the same key here and
// in verifier/replay.py's SQLite file.
function surrogatePass(s) {
  const out = [];
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      }
    }
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return new Uint8Array(out);
}

export async function nonceKey(nonce) {
  const h = new Uint8Array(await crypto.subtle.digest('SHA-256', surrogatePass(nonce)));
  return Array.from(h, (b) => b.toString(16).padStart(2, '0')).join('');
}

// The counter-mode replay memory (verifier/replay.py SqliteReplayStore): kept
// across reloads and shared by every tab of this app, keyed by SHA-256(nonce).
export class IdbReplayStore {
  constructor(db) {
    this.db = db;
  }

  async remember(nonce, { now, until }) {
    const h = await nonceKey(nonce);
    const tx = this.db.transaction('replay', 'readwrite');
    const store = tx.objectStore('replay');
    const done = new Promise((resolve, reject) => {
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
    // One transaction: forget closed windows, then insert unless present,
    // so two tabs scanning the same code cannot both accept it.
    store.index('until').openCursor(IDBKeyRange.upperBound(now, true)).onsuccess = (e) => {
      const cur = e.target.result;
      if (cur) {
        cur.delete();
        cur.continue();
      }
    };
    const seen = await req(store.get(h));
    let fresh = false;
    if (seen === undefined || seen.until < now) {
      store.put({ h, until });
      fresh = true;
    }
    await done;
    return fresh;
  }
}
