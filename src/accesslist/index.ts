import {readFile} from 'node:fs/promises'
import {HashSet20} from '../util/hashset20.js'

export type AccessListMode = 'allow' | 'deny' | 'off'

/** A bad access-list file: names the file, the line and its text. */
export class AccessListError extends Error {
  override name = 'AccessListError'
}

const HEX = /^[0-9a-fA-F]{40}$/

/**
 * Parses an access list: one hex info hash per line (case-insensitive), blank lines and
 * `#` comments (whole-line or after the hash) allowed. Any other line fails the whole file.
 */
export function parseAccessList(text: string, path: string): HashSet20 {
  const lines = text.split(/\r?\n/)
  const set = new HashSet20(lines.length)
  for (let i = 0; i < lines.length; i++) {
    const hashAt = lines[i].indexOf('#')
    const line = (hashAt >= 0 ? lines[i].slice(0, hashAt) : lines[i]).trim()
    if (line === '') continue
    if (!HEX.test(line)) {
      const shown = lines[i].length > 80 ? lines[i].slice(0, 77) + '...' : lines[i]
      throw new AccessListError(
        `access list ${path} line ${i + 1}: ${JSON.stringify(shown)} is not an info hash: expected 40 hex characters`)
    }
    set.add(Buffer.from(line, 'hex'), 0)
  }
  return set
}

export async function loadAccessListFile(path: string): Promise<HashSet20> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error)
    throw new AccessListError(`access list ${path} could not be read (${code}): check [access_list] path`)
  }
  return parseAccessList(text, path)
}

/** The list in force. Swapped whole on a successful reload; a failed reload leaves it as it is. */
export class AccessList {
  generation = 0
  constructor(readonly mode: AccessListMode, private set: HashSet20 = new HashSet20()) {}

  get entries(): number {
    return this.mode === 'off' ? 0 : this.set.size
  }

  /** Hot path: may this info hash (20 bytes at `offset`) be announced? */
  allows(buf: Uint8Array, offset: number): boolean {
    if (this.mode === 'off') return true
    const listed = this.set.has(buf, offset)
    return this.mode === 'allow' ? listed : !listed
  }

  replace(set: HashSet20): void {
    this.set = set
  }

  toBuffer(): Buffer {
    return this.set.toBuffer()
  }
}
