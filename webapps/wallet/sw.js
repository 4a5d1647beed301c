// Offline after the first visit: every file the wallet needs is cached at
// install and served from the cache first.  Bump VERSION with any file change
// (the server sends this file with no-cache, so phones see the new version).
const VERSION = 'dualres-wallet-v2';
const PRECACHE = [
  './',
  'index.html',
  'app.css',
  'app.js',
  'i18n.js',
  'oid4vci.js',
  'qr.js',
  'sdjwt.js',
  'status.js',
  'store.js',
  'wareki.js',
  'manifest.webmanifest',
  'icons/icon.svg',
  'icons/icon-192.png',
  'icons/icon-512.png',
  'vendor/uqr/index.mjs',
  '../lib/b64.js',
  '../lib/base45.js',
  '../lib/errors.js',
  '../lib/transport.js',
  '../lib/vendor/pako/pako.mjs',
];
const URLS = new Set(PRECACHE.map((p) => new URL(p, self.registration.scope).href));
const INDEX = new URL('./', self.registration.scope).href;

self.addEventListener('install', (event) => {
  event.waitUntil(
    caches.open(VERSION)
      // 'reload': never fill the new cache from a stale HTTP cache entry.
      .then((cache) => cache.addAll(PRECACHE.map((p) => new Request(p, { cache: 'reload' }))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith('dualres-wallet-') && k !== VERSION).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  // An offer link (…/wallet/?credential_offer_uri=…; the #… form never reaches here) opens the cached app.
  if (req.mode === 'navigate' && url.origin === self.location.origin && (url.href.split(/[?#]/)[0] === INDEX || url.pathname.endsWith('/wallet/index.html'))) {
    event.respondWith(caches.match(INDEX).then((hit) => hit || fetch(req)));
    return;
  }
  const key = url.origin + url.pathname;
  if (!URLS.has(key)) return; // the issuer's endpoints and status lists: network only
  event.respondWith(caches.match(key).then((hit) => hit || fetch(req)));
});
