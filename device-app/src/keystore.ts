// The device's enrolment in this browser: a non-extractable P-256 private key (WebCrypto) kept in IndexedDB with the
// device id it was enrolled as. IndexedDB stores the CryptoKey itself (structured clone), never its bytes: the page,
// the service worker and any script can sign with it, but nothing can read it out. Nothing here is a secret in plain
// form: the device id, name and public key are public.

export type StoredDevice = {
  issuer: string;
  deviceId: string;
  name: string;
  privateKey: CryptoKey;
  publicJwk: JsonWebKey;
  enrolledAt: number;
};

const DB_NAME = 'ciba-device';
const STORE = 'enrolment';
const KEY = 'device';

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function run<T>(mode: IDBTransactionMode, fn: (store: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const db = await open();
  try {
    return await new Promise<T>((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const request = fn(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(request.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

/** This browser's enrolment, whichever issuer it is for. */
export async function loadStoredDevice(): Promise<StoredDevice | undefined> {
  return (await run('readonly', (s) => s.get(KEY))) as StoredDevice | undefined;
}

/** This browser's enrolment for `issuer`, if any. */
export async function loadDevice(issuer: string): Promise<StoredDevice | undefined> {
  const stored = await loadStoredDevice();
  return stored && stored.issuer === issuer ? stored : undefined;
}

export async function saveDevice(device: StoredDevice): Promise<void> {
  await run('readwrite', (s) => s.put(device, KEY));
}

export async function forgetDevice(): Promise<void> {
  await run('readwrite', (s) => s.delete(KEY));
}

/** A new P-256 key pair whose private key can sign but never be exported. */
export async function newKeyPair(): Promise<{ privateKey: CryptoKey; publicJwk: JsonWebKey }> {
  const pair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
  const { kty, crv, x, y } = await crypto.subtle.exportKey('jwk', pair.publicKey);
  return { privateKey: pair.privateKey, publicJwk: { kty, crv, x, y } };
}
