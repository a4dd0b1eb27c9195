import {test} from 'node:test'
import assert from 'node:assert/strict'
import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {AccessList, AccessListError, loadAccessListFile, parseAccessList} from '../src/accesslist/index.js'
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
  assert.throws(() => parseAccessList(`${good}\n${good.slice(0, 39)}\n`, '/etc/list.txt'), (error: unknown) => {
    assert.ok(error instanceof AccessListError)
    assert.match(error.message, /\/etc\/list\.txt line 2/)
    assert.match(error.message, new RegExp(good.slice(0, 39)))
    assert.match(error.message, /40 hex characters/)
    return true
  })
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

test('HashSet20 grows and round-trips through a buffer', () => {
  const set = new HashSet20(2)
  const keys = Array.from({length: 5000}, () => nastyId())
  for (const k of keys) set.add(k, 0)
  assert.equal(set.size, 5000)
  for (const k of keys) assert.ok(set.has(k, 0))
  const copy = HashSet20.fromBuffer(set.toBuffer())
  assert.equal(copy.size, 5000)
  for (const k of keys) assert.ok(copy.has(k, 0))
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
