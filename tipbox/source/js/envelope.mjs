// The tipbox formats in the browser (docs/envelope.md sections 2, 3, 4 and 8).
//
// Byte for byte what tipbox/crypto/{kdf,keys,directory,envelope}.py do. Every rejection is
// an Error whose message begins with the check name of docs/envelope.md and
// tests/vectors/*.json ("entry.signature: ...", "body.tag_final: ..."), and never contains
// key material or plaintext.

import sodium from "libsodium-wrappers";

export { sodium };

/** Resolves once libsodium is initialised (it compiles its WebAssembly module). */
export const ready = sodium.ready;

function reject(check, text) {
  return new Error(`${check}: ${text}`);
}

// --- bytes ------------------------------------------------------------------------------

const HEX = /^(?:[0-9a-f]{2})*$/;

/** Lowercase hex to bytes; anything else (uppercase, odd length) is refused. */
export function fromHex(text) {
  if (typeof text !== "string" || !HEX.test(text)) throw new Error("hex: not lowercase hex");
  return sodium.from_hex(text);
}

export const toHex = (bytes) => sodium.to_hex(bytes);

/** Standard, padded base64 (what the browser post's manifest carries). */
export const toBase64 = (bytes) => sodium.to_base64(bytes, sodium.base64_variants.ORIGINAL);
export const fromBase64 = (text) => sodium.from_base64(text, sodium.base64_variants.ORIGINAL);

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

const ascii = (text) => new TextEncoder().encode(text);
const equal = (a, b) => a.length === b.length && a.every((byte, i) => byte === b[i]);
const isZero = (bytes) => bytes.every((byte) => byte === 0);

function checkBytes(value, length, what) {
  if (!(value instanceof Uint8Array) || value.length !== length) {
    throw new Error(`${what} must be ${length} bytes`);
  }
}

// --- section 2: derivations and key pairs ------------------------------------------------

/** KDF(key, id, ctx, n): crypto_kdf_derive_from_key. Ids go as BigInt (up to 2^64 - 1). */
export function derive(key, id, context, length = 32) {
  checkBytes(key, 32, "derivation key");
  if (typeof context !== "string" || !/^[\x20-\x7e]{8}$/.test(context)) {
    throw new Error("derivation context must be 8 ASCII characters");
  }
  return sodium.crypto_kdf_derive_from_key(length, BigInt(id), context, key);
}

export const Role = Object.freeze({
  IDENTITY: 1,
  NEWSROOM: 2,
  JOURNALIST: 3,
  RECOVERY: 4,
  SOURCE: 5,
  METADATA: 6,
});

// role -> [context, X25519 subkey id, Ed25519 subkey id or 0 for none]
const DERIVATIONS = {
  1: ["tbidnty1", 2, 1],
  2: ["tbnwsrm1", 1, 0],
  3: ["tbjrnls1", 1, 2],
  4: ["tbrecov1", 1, 0],
  5: ["tbsourc1", 1, 0],
  6: ["tbmetad1", 1, 0],
};

const hasSigningKey = (role) => role === Role.IDENTITY || role === Role.JOURNALIST;

/** The key pair of `role` from a 32-byte seed: {x25519Secret, x25519Public, ed25519Public}. */
export function keypairFromSeed(role, seed) {
  checkBytes(seed, 32, "seed");
  const [context, xId, edId] = DERIVATIONS[role] ?? [];
  if (!context) throw new Error("keys.role: unknown role");
  const x25519Secret = derive(seed, xId, context);
  const ed25519Public = edId
    ? sodium.crypto_sign_seed_keypair(derive(seed, edId, context)).publicKey
    : null;
  return { x25519Secret, x25519Public: sodium.crypto_scalarmult_base(x25519Secret), ed25519Public };
}

// --- section 3: key ids and fingerprints -------------------------------------------------

/** TH(tag, x) = H(tag ‖ 0x00 ‖ x): plain BLAKE2b-256, no salt or personalisation. */
export function taggedHash(tag, data) {
  return sodium.crypto_generichash(32, concat(ascii(tag), Uint8Array.of(0), data));
}

/** fp = TH("tipbox.key-fingerprint.v1", u8 role ‖ x25519 ‖ ed25519 or 32 zeros). */
export function fingerprintHash(role, x25519, ed25519) {
  checkBytes(x25519, 32, "x25519 public key");
  const ed = ed25519 ?? new Uint8Array(32);
  checkBytes(ed, 32, "ed25519 public key");
  return taggedHash("tipbox.key-fingerprint.v1", concat(Uint8Array.of(role), x25519, ed));
}

export const keyIdOf = (role, x25519, ed25519) =>
  fingerprintHash(role, x25519, ed25519).subarray(0, 16);

/** "3F2A 9B01 …": fp[0:20] as 40 uppercase hex digits in groups of four. */
export function formatFingerprint(fp) {
  return toHex(fp.subarray(0, 20)).toUpperCase().match(/.{4}/g).join(" ");
}

// --- section 4: directory entries --------------------------------------------------------

const ENTRY_PREFIX = ascii("tipbox.directory.v1");
const ENTRY_BYTES = 126;
const STATUSES = { 1: [4], 2: [1, 2, 3], 3: [4], 4: [4], 6: [4] }; // role -> allowed statuses

/** Decode and check an entry's structure (not its signature: use verifyEntry). */
export function parseEntry(data) {
  if (!(data instanceof Uint8Array) || data.length !== ENTRY_BYTES) {
    throw reject("entry.length", "entry must be 126 bytes");
  }
  if (!equal(data.subarray(0, 19), ENTRY_PREFIX)) {
    throw reject("entry.prefix", "not a tipbox directory entry");
  }
  if (data[19] !== 0) throw reject("entry.separator", "separator byte is not zero");
  const role = data[20];
  if (!STATUSES[role]) throw reject("entry.role", "unknown role");
  const status = data[21];
  if (!STATUSES[role].includes(status)) {
    throw reject("entry.status", "unknown status or not allowed for the role");
  }
  const keyId = data.slice(22, 38);
  const subjectId = data.slice(38, 54);
  const x25519 = data.slice(54, 86);
  const rawEd25519 = data.slice(86, 118);
  if (hasSigningKey(role) && isZero(rawEd25519)) {
    throw reject("entry.ed25519", "Ed25519 key is all zeros");
  }
  if (!hasSigningKey(role) && !isZero(rawEd25519)) {
    throw reject("entry.ed25519", "this role has no Ed25519 key");
  }
  if (role !== Role.JOURNALIST && !isZero(subjectId)) {
    throw reject("entry.subject_id", "only journalist entries have a subject");
  }
  const ed25519 = hasSigningKey(role) ? rawEd25519 : null;
  if (!equal(keyIdOf(role, x25519, ed25519), keyId)) {
    throw reject("entry.key_id", "key id does not match the public keys");
  }
  const view = new DataView(data.buffer, data.byteOffset + 118, 8);
  return { role, status, keyId, subjectId, x25519, ed25519, serial: view.getBigUint64(0) };
}

/** Check an entry and its signature by the identity key; return the parsed entry. */
export function verifyEntry(identityEd25519, entry, signature) {
  if (!(identityEd25519 instanceof Uint8Array) || identityEd25519.length !== 32) {
    throw reject("entry.identity", "identity public key must be 32 bytes");
  }
  const parsed = parseEntry(entry);
  // One identity per instance: an identity entry must describe the signer itself.
  if (parsed.role === Role.IDENTITY && !equal(parsed.ed25519, identityEd25519)) {
    throw reject("entry.identity", "identity entry is not for the verifying key");
  }
  if (!(signature instanceof Uint8Array) || signature.length !== 64) {
    throw reject("entry.signature", "signature must be 64 bytes");
  }
  let good = false;
  try {
    good = sodium.crypto_sign_verify_detached(signature, entry, identityEd25519);
  } catch {
    good = false; // libsodium throws on a malformed key: it does not verify either way
  }
  if (!good) throw reject("entry.signature", "signature does not verify");
  return parsed;
}

// --- section 8.1: additional data --------------------------------------------------------

export const VERSION = 1;
export const Kind = Object.freeze({ MESSAGE: 1, FILE: 2, REPLY: 3, NOTE: 4 });
const AD_PREFIX = ascii("tipbox.envelope\0");

/** AD = "tipbox.envelope" ‖ 0x00 ‖ u8 version ‖ u8 kind ‖ source_id ‖ item_id (50 bytes). */
export function additionalData(kind, sourceId, itemId) {
  if (!Object.values(Kind).includes(kind)) throw new Error("additional data: unknown kind");
  checkBytes(sourceId, 16, "source id");
  checkBytes(itemId, 16, "item id");
  return concat(AD_PREFIX, Uint8Array.of(VERSION, kind), sourceId, itemId);
}

function checkAd(ad) {
  const ok =
    ad instanceof Uint8Array &&
    ad.length === 50 &&
    equal(ad.subarray(0, 16), AD_PREFIX) &&
    ad[16] === VERSION &&
    Object.values(Kind).includes(ad[17]);
  if (!ok) throw new Error("additional data: malformed");
}

// --- section 8.2: lengths ----------------------------------------------------------------

export const CHUNK_BYTES = 65536;
const HEADER_BYTES = 24;
const ABYTES = 17;
const SEALED_CHUNK_BYTES = CHUNK_BYTES + ABYTES;
const MIN_PADDED_BYTES = 4096;
export const MAX_CONTENT_BYTES = Number.MAX_SAFE_INTEGER; // 2^53 - 1, as in Python

const bitLength = (n) => n.toString(2).length; // n: a positive BigInt

/** Padmé of n >= 2 (BigInt inside: JavaScript's bit operators stop at 32 bits). */
export function padme(n) {
  if (!Number.isSafeInteger(n) || n < 2) throw new Error("padme: length must be at least 2");
  const big = BigInt(n);
  const e = bitLength(big) - 1; // floor(log2 n)
  const s = bitLength(BigInt(e)); // floor(log2 e) + 1
  const mask = (1n << BigInt(e - s)) - 1n;
  return Number((big + mask) & ~mask); // at most 2^53: exact as a Number
}

/** P = padme(max(L, 4096)). */
export function paddedLength(length) {
  if (!Number.isSafeInteger(length) || length < 0) {
    throw new Error("body: content length out of range");
  }
  return padme(Math.max(length, MIN_PADDED_BYTES));
}

const chunkCount = (padded) => Math.ceil(padded / CHUNK_BYTES);

/** |blob| = 24 + P + 17·ceil(P / 65536) (beyond 2^53, rounded like any JSON number). */
export function blobLength(length) {
  const padded = paddedLength(length);
  return Number(BigInt(HEADER_BYTES + ABYTES * chunkCount(padded)) + BigInt(padded));
}

/** The bucket P a blob of `size` bytes carries, or a rejection (what a server checks). */
export function paddedLengthOfBlob(size) {
  const chunks = Math.ceil((size - HEADER_BYTES) / SEALED_CHUNK_BYTES);
  const padded = size - HEADER_BYTES - ABYTES * chunks;
  if (chunks < 1 || padded < MIN_PADDED_BYTES || padme(padded) !== padded) {
    throw new Error("body: blob size is not a valid bucket");
  }
  if (HEADER_BYTES + padded + ABYTES * chunkCount(padded) !== size) {
    throw new Error("body: blob size is not a valid bucket");
  }
  return padded;
}

// --- content keys ------------------------------------------------------------------------

export const newContentKey = () => sodium.randombytes_buf(32);
const bodyKey = (contentKey) => derive(contentKey, 1, "tbcontn1");
const metaKey = (contentKey) => derive(contentKey, 2, "tbcontn1");
export const contentSubkeys = (contentKey) => [bodyKey(contentKey), metaKey(contentKey)];

// --- section 8.2: body -------------------------------------------------------------------

const TAG_MESSAGE = 0;
const TAG_FINAL = 3;
const READ_BYTES = 16 * CHUNK_BYTES; // one File read feeds 16 chunks: 1 MiB at a time
const BLOB_PART_BYTES = 4 * 1024 * 1024; // fold ciphertext into Blobs every 4 MiB

/**
 * Encrypt a File (or any Blob) or a Uint8Array (a message) into a blob of the format.
 *
 * A message stays a Uint8Array in memory (a Blob of plaintext could be paged to disk by
 * the browser). A file is read in 1 MiB slices and never held whole; the ciphertext is
 * folded into Blob parts every 4 MiB, so the JavaScript heap holds a few MiB whatever the
 * size. The length is known before the first read, so the chunk that takes TAG_FINAL is.
 * Returns {blob, plainLength, paddedLength}; onProgress(doneBytes, totalBytes) is called
 * after each slice.
 */
export async function encryptBody(contentKey, ad, content, onProgress = () => {}) {
  checkAd(ad);
  const inMemory = content instanceof Uint8Array;
  const length = inMemory ? content.length : content.size;
  const read = async (start, end) =>
    inMemory
      ? content.subarray(start, end)
      : new Uint8Array(await content.slice(start, end).arrayBuffer());
  const padded = paddedLength(length);
  const count = chunkCount(padded);
  const { state, header } = sodium.crypto_secretstream_xchacha20poly1305_init_push(
    bodyKey(contentKey),
  );
  const parts = [];
  let pending = [header];
  let pendingBytes = header.length;
  let slice = new Uint8Array(0); // plaintext read but not yet pushed
  let sliceStart = 0; // offset of `slice` in the padded plaintext
  for (let i = 0; i < count; i += 1) {
    const start = i * CHUNK_BYTES;
    const end = Math.min(start + CHUNK_BYTES, padded);
    const contentEnd = Math.min(end, length);
    if (start < length && contentEnd > sliceStart + slice.length) {
      // Read the next slice of real content; the File must still have every byte.
      const readEnd = Math.min(start + READ_BYTES, length);
      slice = await read(start, readEnd);
      sliceStart = start;
      if (slice.length !== readEnd - start) throw new Error("body: the file changed while read");
      onProgress(readEnd, length);
    }
    // Content bytes of this chunk from the slice, then zeros up to P.
    const chunk = new Uint8Array(end - start);
    if (start < length) chunk.set(slice.subarray(start - sliceStart, contentEnd - sliceStart));
    const sealed = sodium.crypto_secretstream_xchacha20poly1305_push(
      state,
      chunk,
      i === 0 ? ad : null, // AD on the first chunk only
      i === count - 1 ? TAG_FINAL : TAG_MESSAGE,
    );
    pending.push(sealed);
    pendingBytes += sealed.length;
    if (pendingBytes >= BLOB_PART_BYTES) {
      parts.push(new Blob(pending));
      pending = [];
      pendingBytes = 0;
    }
  }
  if (length === 0) onProgress(0, 0);
  const blob = new Blob([...parts, ...pending], { type: "application/octet-stream" });
  return { blob, plainLength: length, paddedLength: padded };
}

/**
 * Decrypt and check a blob (a Blob or Uint8Array) whose meta gave `plainLength`; return
 * the content. Every reader rule of section 8.2 is checked, framed by the layout P gives
 * (as tipbox.crypto.envelope.BodyReader does). For the self-test and tests: the whole
 * content is returned at once.
 */
export async function decryptBody(contentKey, ad, blob, plainLength) {
  checkAd(ad);
  const data = blob instanceof Uint8Array ? blob : new Uint8Array(await blob.arrayBuffer());
  const padded = paddedLength(plainLength);
  let at = 0;
  const read = (n) => data.subarray(at, (at = Math.min(at + n, data.length)));
  const more = () => at < data.length;

  const header = read(HEADER_BYTES);
  if (header.length < HEADER_BYTES) throw reject("body.too_short", "blob too short");
  const state = sodium.crypto_secretstream_xchacha20poly1305_init_pull(header, bodyKey(contentKey));
  const out = new Uint8Array(plainLength);
  let chunkAd = ad;
  let produced = 0; // padded plaintext bytes authenticated so far
  for (;;) {
    const remaining = padded - produced;
    if (remaining === 0) {
      // All of P has been read, yet no chunk was final.
      if (more()) throw reject("body.padded_length", "padded length does not match the meta");
      throw reject("body.tag_final", "stream ends without TAG_FINAL");
    }
    // Read no further than the chunk that should be the last, so that any byte after it
    // is noticed as such.
    const wanted = Math.min(SEALED_CHUNK_BYTES, remaining + ABYTES);
    const sealed = read(wanted);
    if (sealed.length < ABYTES) {
      if (chunkAd) throw reject("body.too_short", "blob too short");
      throw reject("body.tag_final", "stream ends without TAG_FINAL");
    }
    let result = false;
    try {
      result = sodium.crypto_secretstream_xchacha20poly1305_pull(state, sealed, chunkAd);
    } catch {
      result = false;
    }
    if (!result) throw reject("body.authenticate", "chunk fails to authenticate");
    const { message: plain, tag } = result;
    chunkAd = null;
    if (tag === TAG_FINAL) {
      if (more()) throw reject("body.trailing", "bytes after TAG_FINAL");
      if (produced + plain.length !== padded) {
        throw reject("body.padded_length", "padded length does not match the meta");
      }
    } else if (tag !== TAG_MESSAGE) {
      throw reject("body.tag", "chunk tag not allowed");
    } else if (sealed.length !== SEALED_CHUNK_BYTES) {
      // A short chunk that is not final: the stream ends here, or goes on past the chunk
      // that P makes the last.
      if (sealed.length < wanted || !more()) {
        throw reject("body.tag_final", "stream ends without TAG_FINAL");
      }
      throw reject("body.padded_length", "padded length does not match the meta");
    }
    const keep = Math.min(plain.length, Math.max(0, plainLength - produced));
    if (!isZero(plain.subarray(keep))) throw reject("body.padding", "non-zero padding");
    out.set(plain.subarray(0, keep), produced);
    produced += plain.length;
    if (tag === TAG_FINAL) return out;
  }
}

// --- section 8.3: meta -------------------------------------------------------------------

export const TEXT_MEDIA_TYPE = "text/plain; charset=utf-8";
const META_BLOCK_BYTES = 1024;
const META_RECORD_MAX = META_BLOCK_BYTES - 1; // sodium_pad always adds a byte
const META_FIXED_BYTES = 8 + 2 + 1;
const SEALED_META_BYTES = 24 + META_BLOCK_BYTES + 16; // 1064
const EXTENSION_MAX = 32;

/** Back `end` up to a UTF-8 character boundary of `bytes`. */
function utf8Boundary(bytes, end) {
  while (end > 0 && end < bytes.length && (bytes[end] & 0xc0) === 0x80) end -= 1;
  return end;
}

/** Cut a UTF-8 name to `limit` bytes at a character boundary, keeping a short extension. */
function shortenName(name, limit) {
  if (name.length <= limit) return name;
  const dot = name.lastIndexOf(0x2e);
  let extension = dot > 0 ? name.subarray(dot) : new Uint8Array(0);
  if (!(extension.length > 1 && extension.length <= Math.min(EXTENSION_MAX, limit - 1))) {
    extension = new Uint8Array(0);
  }
  const stem = name.subarray(0, name.length - extension.length);
  const kept = stem.subarray(0, utf8Boundary(stem, limit - extension.length));
  if (kept.length === 0) return name.subarray(0, utf8Boundary(name, limit));
  return concat(kept, extension);
}

/** Seal {name, mediaType, size} into the 1064-byte sealed meta. `nonce` for vectors only. */
export function sealMeta(contentKey, ad, meta, nonce = sodium.randombytes_buf(24)) {
  checkAd(ad);
  const { name, mediaType, size } = meta;
  if (typeof mediaType !== "string" || !/^[\x20-\x7e]{0,255}$/.test(mediaType)) {
    throw new Error("meta: media type must be at most 255 printable ASCII characters");
  }
  if (!Number.isSafeInteger(size) || size < 0) throw new Error("meta: size out of range");
  // A lone surrogate in a name becomes U+FFFD (TextEncoder), as a form post would send it.
  if (typeof name !== "string") throw new Error("meta: name must be a string");
  checkBytes(nonce, 24, "meta nonce");
  const type = ascii(mediaType);
  const nameBytes = shortenName(
    new TextEncoder().encode(name),
    META_RECORD_MAX - META_FIXED_BYTES - type.length,
  );
  const record = new Uint8Array(META_FIXED_BYTES + nameBytes.length + type.length);
  const view = new DataView(record.buffer);
  view.setBigUint64(0, BigInt(size));
  view.setUint16(8, nameBytes.length);
  record.set(nameBytes, 10);
  record[10 + nameBytes.length] = type.length;
  record.set(type, 11 + nameBytes.length);
  const padded = sodium.pad(record, META_BLOCK_BYTES);
  const sealed = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
    padded,
    ad,
    null,
    nonce,
    metaKey(contentKey),
  );
  return concat(nonce, sealed);
}

/** Open and check a sealed meta; return {name, mediaType, size}. */
export function openMeta(contentKey, ad, sealedMeta) {
  checkAd(ad);
  if (!(sealedMeta instanceof Uint8Array) || sealedMeta.length !== SEALED_META_BYTES) {
    throw reject("meta.length", "wrong length");
  }
  let padded;
  try {
    padded = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
      null,
      sealedMeta.subarray(24),
      ad,
      sealedMeta.subarray(0, 24),
      metaKey(contentKey),
    );
  } catch {
    throw reject("meta.authenticate", "fails to authenticate");
  }
  let record;
  try {
    record = sodium.unpad(padded, META_BLOCK_BYTES);
  } catch {
    throw reject("meta.padding", "bad padding");
  }
  if (record.length < 10) throw reject("meta.overrun", "lengths overrun the record");
  const view = new DataView(record.buffer, record.byteOffset, record.length);
  const typeAt = 10 + view.getUint16(8);
  if (typeAt >= record.length) throw reject("meta.overrun", "lengths overrun the record");
  const typeEnd = typeAt + 1 + record[typeAt];
  if (typeEnd > record.length) throw reject("meta.overrun", "lengths overrun the record");
  if (typeEnd !== record.length) throw reject("meta.trailing", "bytes after the type");
  let name;
  try {
    name = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(
      record.subarray(10, typeAt),
    );
  } catch {
    throw reject("meta.name_utf8", "name is not valid UTF-8");
  }
  const type = record.subarray(typeAt + 1, typeEnd);
  if (!type.every((b) => b >= 0x20 && b <= 0x7e)) {
    throw reject("meta.type_ascii", "media type is not printable ASCII");
  }
  // u64be L below 2^53: the high 32 bits below 2^21.
  const high = view.getUint32(0);
  if (high >= 0x200000) throw reject("meta.size", "size out of range");
  const size = high * 2 ** 32 + view.getUint32(4);
  return { name, mediaType: String.fromCharCode(...type), size };
}

// --- section 8.4: wraps ------------------------------------------------------------------

/** wrap = crypto_box_seal(K, recipient X25519 public key): 80 bytes. */
export function wrapKey(contentKey, recipientPublic) {
  checkBytes(contentKey, 32, "content key");
  checkBytes(recipientPublic, 32, "recipient public key");
  return sodium.crypto_box_seal(contentKey, recipientPublic);
}

/** Open a wrap with the recipient's X25519 secret key; return K. */
export function unwrapKey(wrap, recipientSecret) {
  checkBytes(recipientSecret, 32, "recipient secret key");
  if (!(wrap instanceof Uint8Array) || wrap.length !== 80) {
    throw reject("wrap.length", "wrong length");
  }
  try {
    const publicKey = sodium.crypto_scalarmult_base(recipientSecret);
    return sodium.crypto_box_seal_open(wrap, publicKey, recipientSecret);
  } catch {
    throw reject("wrap.open", "does not open");
  }
}

// --- a whole item, as the browser post carries it ----------------------------------------

/**
 * Encrypt one item (message or file) for the newsroom key of a verified entry:
 * {itemId, kind, keyId, sealedMeta, wrap, body (Blob), plainLength}. The content key lives
 * only inside this call and is wiped before it returns.
 */
export async function sealItem(item) {
  const { kind, sourceId, itemId, content, name, mediaType, recipient, onProgress } = item;
  const ad = additionalData(kind, sourceId, itemId);
  const contentKey = newContentKey();
  try {
    const body = await encryptBody(contentKey, ad, content, onProgress);
    const sealedMeta = sealMeta(contentKey, ad, { name, mediaType, size: body.plainLength });
    const wrap = wrapKey(contentKey, recipient.x25519);
    const { blob, plainLength } = body;
    return { itemId, kind, keyId: recipient.keyId, sealedMeta, wrap, body: blob, plainLength };
  } finally {
    sodium.memzero(contentKey);
  }
}

/** The `manifest` field of the browser post (docs/source-app.md 4.2); parts blob0, blob1, … */
export function buildManifest(sourceId, items) {
  return JSON.stringify({
    version: 1,
    source_id: toHex(sourceId),
    items: items.map((item, i) => ({
      item_id: toHex(item.itemId),
      kind: item.kind,
      key_id: toHex(item.keyId),
      sealed_meta: toBase64(item.sealedMeta),
      wrap: toBase64(item.wrap),
      part: `blob${i}`,
    })),
  });
}
