// IndexedDB: the one place the holder key and the credential live.
// A CryptoKey survives structured cloning with its extractable flag, so the
// private key stored here can sign but never be read out, not even by us.
const DB_NAME = 'dualres-wallet';
const DB_VERSION = 1;
const STORE = 'kv';

let opened = null;

function open() {
  if (!opened) {
    opened = new Promise((resolve, reject) => {
      const req = indexedDB.open(DB_NAME, DB_VERSION);
      req.onupgradeneeded = () => req.result.createObjectStore(STORE);
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  }
  return opened;
}

async function run(mode, fn) {
  const db = await open();
  return new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, mode);
    const req = fn(tx.objectStore(STORE));
    tx.oncomplete = () => resolve(req && req.result);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
}

export const get = (key) => run('readonly', (s) => s.get(key));
export const put = (key, value) => run('readwrite', (s) => s.put(value, key));
export const del = (key) => run('readwrite', (s) => s.delete(key));

// Key and credential are written in one transaction: a card is never kept
// without the key it is bound to, nor the other way round.
export function putMany(entries) {
  return run('readwrite', (s) => {
    let last = null;
    for (const [key, value] of Object.entries(entries)) last = s.put(value, key);
    return last;
  });
}

// Writes and deletions in one transaction (the move to several cards: the new
// list is written and the old single-card keys dropped together, or neither).
export function update(puts, dels = []) {
  return run('readwrite', (s) => {
    for (const [key, value] of Object.entries(puts)) s.put(value, key);
    for (const key of dels) s.delete(key);
    return null;
  });
}

export function clear() {
  return run('readwrite', (s) => s.clear());
}
