/** Client side of the HTTP tracker protocol: request paths for load testers and tests. */

/** `%XX` for every byte value, and the byte itself for RFC 3986 unreserved characters. */
const ENCODED = Array.from({length: 256}, (_, b) => {
  const c = String.fromCharCode(b)
  return /[A-Za-z0-9\-._~]/.test(c) ? c : '%' + b.toString(16).toUpperCase().padStart(2, '0')
})

/** Percent-encodes binary (an info hash or peer id) for a query string. */
export function percentEncode(bytes: Uint8Array): string {
  let out = ''
  for (let i = 0; i < bytes.length; i++) out += ENCODED[bytes[i]]
  return out
}

export interface AnnounceFields {
  infoHash: Uint8Array
  peerId: Uint8Array
  port: number
  uploaded?: number
  downloaded?: number
  left: number
  event?: 'started' | 'stopped' | 'completed'
  numWant?: number
  compact?: boolean
}

/** `/announce?...` for the given fields. */
export function announcePath(f: AnnounceFields, prefix = '/announce'): string {
  let q =
    `${prefix}?info_hash=${percentEncode(f.infoHash)}&peer_id=${percentEncode(f.peerId)}&port=${f.port}` +
    `&uploaded=${f.uploaded ?? 0}&downloaded=${f.downloaded ?? 0}&left=${f.left}`
  if (f.event) q += `&event=${f.event}`
  if (f.numWant !== undefined) q += `&numwant=${f.numWant}`
  q += f.compact === false ? '&compact=0' : '&compact=1'
  return q
}

/** `/scrape?info_hash=...&info_hash=...` */
export function scrapePath(hashes: Uint8Array[], prefix = '/scrape'): string {
  return `${prefix}?` + hashes.map(h => `info_hash=${percentEncode(h)}`).join('&')
}
