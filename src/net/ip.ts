/**
 * IP address text <-> bytes, without allocation on the parse side: the servers turn every
 * packet's source address into bytes for the swarm and for connection ids.
 */

/** Parses a dotted quad into out[0..3]; returns false if it is not one. */
function parseIpv4Into(s: string, start: number, end: number, out: Uint8Array, at: number): boolean {
  let part = 0
  let value = 0
  let digits = 0
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i)
    if (c === 46) {
      if (digits === 0 || part === 3) return false
      out[at + part++] = value
      value = 0
      digits = 0
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && value === 0) return false // no leading zeros
      value = value * 10 + (c - 48)
      if (value > 255 || ++digits > 3) return false
    } else {
      return false
    }
  }
  if (part !== 3 || digits === 0) return false
  out[at + 3] = value
  return true
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48
  if (c >= 97 && c <= 102) return c - 87
  if (c >= 65 && c <= 70) return c - 55
  return -1
}

/**
 * Parses an IPv4 or IPv6 address (as Node reports them: `1.2.3.4`, `::1`, `::ffff:1.2.3.4`,
 * `fe80::1%eth0`) into `out` (16 bytes). IPv4 and IPv4-mapped IPv6 come out as family 4 in
 * out[0..3]; other IPv6 as family 6 in out[0..15]. Returns 0 when the text is not an address.
 */
export function parseIpInto(s: string, out: Uint8Array): 0 | 4 | 6 {
  const length = s.length
  if (length === 0) return 0
  if (s.indexOf(':') < 0) return parseIpv4Into(s, 0, length, out, 0) ? 4 : 0
  let end = s.indexOf('%')
  if (end < 0) end = length
  // Groups before and after "::"; an embedded IPv4 tail counts as two groups.
  let words = 0
  let gap = -1
  let i = 0
  if (s.charCodeAt(0) === 58) {
    if (s.charCodeAt(1) !== 58) return 0
    gap = 0
    i = 2
    if (i === end) {
      out.fill(0, 0, 16)
      return 6
    }
  }
  while (i < end) {
    // One group, or an IPv4 tail.
    let j = i
    let value = 0
    let sawDot = false
    while (j < end) {
      const c = s.charCodeAt(j)
      if (c === 58) break
      if (c === 46) sawDot = true
      j++
    }
    if (sawDot) {
      if (j !== end || words > 6) return 0
      if (!parseIpv4Into(s, i, j, out, words * 2)) return 0
      words += 2
      i = j
      break
    }
    if (j === i || j - i > 4) return 0
    for (let k = i; k < j; k++) {
      const h = hexValue(s.charCodeAt(k))
      if (h < 0) return 0
      value = (value << 4) | h
    }
    if (words >= 8) return 0
    out[words * 2] = value >> 8
    out[words * 2 + 1] = value & 0xff
    words++
    i = j
    if (i === end) break
    // At a colon: "::" marks the gap (once), a single colon separates.
    i++
    if (i < end && s.charCodeAt(i) === 58) {
      if (gap >= 0) return 0
      gap = words
      i++
    } else if (i === end) {
      return 0 // trailing single colon
    }
  }
  if (gap < 0) {
    if (words !== 8) return 0
  } else {
    if (words > 7) return 0
    const tail = words - gap
    const shift = 8 - words
    // Move the groups after the gap to the end, zero the gap.
    for (let w = tail - 1; w >= 0; w--) {
      out[(gap + shift + w) * 2] = out[(gap + w) * 2]
      out[(gap + shift + w) * 2 + 1] = out[(gap + w) * 2 + 1]
    }
    out.fill(0, gap * 2, (gap + shift) * 2)
  }
  // ::ffff:a.b.c.d is an IPv4 peer.
  if (out[10] === 0xff && out[11] === 0xff) {
    let mapped = true
    for (let k = 0; k < 10; k++) if (out[k] !== 0) mapped = false
    if (mapped) {
      out.copyWithin(0, 12, 16)
      return 4
    }
  }
  return 6
}

/** Formats 4 or 16 bytes as text (RFC 5952 compression for IPv6). */
export function formatIp(bytes: Uint8Array, offset = 0, family: 4 | 6 = 4): string {
  if (family === 4) return `${bytes[offset]}.${bytes[offset + 1]}.${bytes[offset + 2]}.${bytes[offset + 3]}`
  const groups: number[] = []
  for (let w = 0; w < 8; w++) groups.push((bytes[offset + 2 * w] << 8) | bytes[offset + 2 * w + 1])
  // Longest run of zero groups (length >= 2) becomes "::"; the first one wins ties.
  let bestStart = -1
  let bestLength = 1
  for (let w = 0; w < 8; ) {
    if (groups[w] !== 0) {
      w++
      continue
    }
    let e = w
    while (e < 8 && groups[e] === 0) e++
    if (e - w > bestLength) {
      bestStart = w
      bestLength = e - w
    }
    w = e
  }
  const hex = (from: number, to: number) =>
    groups
      .slice(from, to)
      .map(g => g.toString(16))
      .join(':')
  if (bestStart < 0) return hex(0, 8)
  return `${hex(0, bestStart)}::${hex(bestStart + bestLength, 8)}`
}
