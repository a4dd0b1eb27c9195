/** The logger: levels, and lines in text or JSON that a message cannot break. */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {createLogger, type LogFormat} from '../src/util/log.js'

// What a client or a file could put in a message: a forged second line, quotes, controls, separators.
const HOSTILE = 'bad "hash" \\x\n2026-01-01T00:00:00.000Z ERROR forged\r\u0000\u001b[31m\u2028end\ttab'

function capture(format: LogFormat, level: 'info' | 'warn' = 'info', fields?: Record<string, string | number>) {
  const lines: string[] = []
  return {lines, log: createLogger(level, {format, fields, write: line => lines.push(line)})}
}

test('json: one object per line with time, level, msg and the fields; any message comes back intact', () => {
  const {lines, log} = capture('json', 'info', {worker: 3})
  log.info(HOSTILE)
  log.error('plain')
  log.debug('not at info')
  assert.equal(lines.length, 2)
  for (const line of lines) {
    assert.ok(line.endsWith('\n'))
    assert.equal(line.indexOf('\n'), line.length - 1, 'one line')
    // biome-ignore lint/suspicious/noControlCharactersInRegex: none may be left raw
    assert.doesNotMatch(line.slice(0, -1), /[\u0000-\u001f\u007f\u2028\u2029]/)
  }
  const first = JSON.parse(lines[0])
  assert.deepEqual(Object.keys(first), ['time', 'level', 'msg', 'worker'])
  assert.equal(first.level, 'info')
  assert.equal(first.msg, HOSTILE)
  assert.equal(first.worker, 3)
  assert.equal(new Date(first.time).toISOString(), first.time)
  assert.equal(JSON.parse(lines[1]).level, 'error')
})

test('text: time, level, the fields as a prefix, and the message on one line with its controls escaped', () => {
  const {lines, log} = capture('text', 'warn', {worker: 1})
  log.warn(HOSTILE)
  log.info('not at warn')
  assert.equal(lines.length, 1)
  const line = lines[0]
  assert.equal(line.indexOf('\n'), line.length - 1, 'one line: the forged line stays inside it')
  assert.match(
    line,
    /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z WARN {2}\[worker 1\] bad "hash" \\x\\n2026-01-01T00:00:00\.000Z ERROR forged\\r\\u0000\\u001b\[31m\\u2028end\ttab\n$/,
  )
  const plain = capture('text')
  plain.log.info('hello')
  assert.match(plain.lines[0], /^\S+ INFO {2}hello\n$/)
})

test('off logs nothing; enabled follows the level', () => {
  const {lines, log} = capture('json')
  const off = createLogger('off', {format: 'json', write: line => lines.push(line)})
  off.error('x')
  assert.deepEqual(lines, [])
  assert.equal(off.enabled('error'), false)
  assert.equal(log.enabled('info'), true)
  assert.equal(log.enabled('debug'), false)
})
