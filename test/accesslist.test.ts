import {test} from 'node:test'
import assert from 'node:assert/strict'
import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {randomBytes} from 'node:crypto'
import {AccessList, AccessListError, buildSet, decodeAccessList, loadAccessListFile, parseAccessList} from '../src/accesslist/index.js'
import {HashSet20} from '../src/util/hashset20.js'
import {nastyId} from './helpers.js'

test('parses hex hashes case-insensitively with blank lines and comments', () => {
  const a = nastyId()
  const b = nastyId()
  const text = `# allowed torrents\n\n${a.toString('hex').toUpperCase()}\n  ${b.toString('hex')}  # inline comment\n\r\n`
  const set = parseAccessList(text, 'list.txt')
  assert.equal(set.size, 2)
  assert.ok(set.has(a, 0))
  assert.ok(set.has(b, 0))
  assert.ok(!set.has(nastyId(), 0))
})

test('a bad line fails the whole file, naming file, line and text', () => {
  const good = nastyId().toString('hex')
  assert.throws(
    () => parseAccessList(`${good}\n${good.slice(0, 39)}\n`, '/etc/list.txt'),
    (error: unknown) => {
      assert.ok(error instanceof AccessListError)
      assert.match(error.message, /\/etc\/list\.txt line 2/)
      assert.match(error.message, new RegExp(good.slice(0, 39)))
      assert.match(error.message, /40 hex characters/)
      return true
    },
  )
  assert.throws(() => parseAccessList('zz' + good.slice(2), 'x'), /line 1/)
})

test('missing file names the file', async () => {
  await assert.rejects(loadAccessListFile('/nonexistent/list.txt'), /\/nonexistent\/list\.txt could not be read \(ENOENT\)/)
})

test('modes: allow, deny, off', () => {
  const listed = nastyId()
  const other = nastyId()
  const set = new HashSet20()
  set.add(listed, 0)
  const allow = new AccessList('allow', set)
  assert.equal(allow.allows(listed, 0), true)
  assert.equal(allow.allows(other, 0), false)
  const deny = new AccessList('deny', set)
  assert.equal(deny.allows(listed, 0), false)
  assert.equal(deny.allows(other, 0), true)
  const off = new AccessList('off', set)
  assert.equal(off.allows(listed, 0), true)
  assert.equal(off.entries, 0)
  // Lookup straight from a packet at an offset.
  const packet = Buffer.concat([Buffer.alloc(16, 7), listed])
  assert.equal(allow.allows(packet, 16), true)
})

test('HashSet20 grows', () => {
  const set = new HashSet20(2)
  const keys = Array.from({length: 5000}, () => nastyId())
  for (const k of keys) set.add(k, 0)
  assert.equal(set.size, 5000)
  for (const k of keys) assert.ok(set.has(k, 0))
  assert.ok(!set.has(nastyId(), 0))
  assert.equal(set.add(keys[0], 0), false)
})

test('loads from a file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'al-'))
  const path = join(dir, 'list.txt')
  const a = nastyId()
  writeFileSync(path, a.toString('hex') + '\n')
  const set = await loadAccessListFile(path)
  assert.ok(set.has(a, 0))
})

test('decoding bytes: BOM, CRLF, tabs, comments, no final newline; the same keys as the text parser', async () => {
  const [a, b, c] = [nastyId(), nastyId(), nastyId()]
  const text = `\uFEFF${a.toString('hex')}\r\n\t${b.toString('hex').toUpperCase()}\t# b\r\n#${c.toString('hex')}\n   \n${c.toString('hex')}`
  const keys = await decodeAccessList(Buffer.from(text), 'x')
  assert.deepEqual(keys, Buffer.concat([a, b, c]))
  const set = parseAccessList(text, 'x')
  assert.equal(set.size, 3)
  for (const k of [a, b, c]) assert.ok(set.has(k, 0))
})

test('decoding bytes: each kind of bad line names its number and text', async () => {
  const good = nastyId().toString('hex')
  const cases: [string, number, string][] = [
    [`${good}\n${good}0\n`, 2, `${good}0`], // 41 hex digits
    [`${good}\n\n${good.slice(0, 39)}`, 3, good.slice(0, 39)], // short, at the end of the file
    [`${good} x\n`, 1, `${good} x`],
    [`${good.slice(0, 20)}zz${good.slice(22)}\r\n`, 1, `${good.slice(0, 20)}zz${good.slice(22)}`],
    [`# fine\n+${good}\n`, 2, `+${good}`],
    [`${good}\u00a0\n`, 1, `${good}\u00a0`], // only ASCII blanks are blanks
  ]
  for (const [text, line, shown] of cases) {
    await assert.rejects(
      decodeAccessList(Buffer.from(text), '/l.txt'),
      (error: unknown) => {
        assert.ok(error instanceof AccessListError)
        assert.equal(error.message, `access list /l.txt line ${line}: ${JSON.stringify(shown)} is not an info hash: expected 40 hex characters`)
        return true
      },
      JSON.stringify(text),
    )
  }
})

test('a big list is decoded and built in slices: the event loop turns meanwhile', async () => {
  const n = 200_000
  const raw = randomBytes(20 * n)
  let text = ''
  for (let i = 0; i < n; i++) text += raw.toString('hex', 20 * i, 20 * i + 20) + '\n'
  let turns = 0
  const tick = setInterval(() => turns++, 0)
  try {
    const keys = await decodeAccessList(Buffer.from(text), 'big')
    const decodeTurns = turns
    const set = await buildSet(Buffer.concat([keys, keys.subarray(0, 20 * 1000)]))
    assert.ok(decodeTurns > 0, 'timers ran while the list was decoded')
    assert.ok(turns > decodeTurns, 'timers ran while the set was built')
    assert.equal(set.size, n, 'duplicates count once')
    assert.ok(set.has(raw, 0) && set.has(raw, 20 * (n - 1)))
  } finally {
    clearInterval(tick)
  }
})

test('HashSet20 copies through its table, part by part, with no hashing', () => {
  const set = new HashSet20(3000)
  const keys = Array.from({length: 3000}, () => nastyId())
  for (const k of keys) set.add(k, 0)
  const copy = HashSet20.emptyCopy(set.capacity, set.seed, set.size)
  const split = set.capacity * 20
  for (const [from, to] of [
    [0, split],
    [split, set.tableLength],
  ]) {
    for (let at = from; at < to; at += 1000) copy.writeTable(at, Buffer.from(set.tableSlice(at, Math.min(to, at + 1000))))
  }
  assert.equal(copy.size, 3000)
  for (const k of keys) assert.ok(copy.has(k, 0))
  assert.ok(!copy.has(nastyId(), 0))
  assert.throws(() => HashSet20.emptyCopy(100, set.seed, 0), /power of two/)
})
