// Offline after the first visit: every file the wallet needs is cached at
// install and served from the cache first (../lib/offline.js).  Bump VERSION
// with any file change (the server sends this file with no-cache, so phones
// see the new version).
importScripts('../lib/offline.js');

const VERSION = 'v17'; // issue 12, the glossary's tier words, review-C
const PRECACHE = [
  './',
  'index.html',
  'app.css',
  'app.js',
  'cards.js',
  'i18n.js',
  'oid4vci.js',
  'qr.js',
  'sdjwt.js',
  'status.js',
  'store.js',
  'manifest.webmanifest',
  'icons/icon.svg',
  'icons/icon-192.png',
  'icons/icon-512.png',
  'vendor/uqr/index.mjs',
  '../lib/b64.js',
  '../lib/base45.js',
  '../lib/errors.js',
  '../lib/statuslist.js',
  '../lib/wareki.js',
  '../lib/shared.js',
  '../lib/transport.js',
  '../lib/vendor/pako/pako.mjs',
];

serveOffline({ app: 'wallet', version: VERSION, precache: PRECACHE });
