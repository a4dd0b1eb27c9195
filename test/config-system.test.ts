import {test} from 'node:test'
import assert from 'node:assert/strict'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {parse as parseToml} from 'smol-toml'
import {ConfigError, defaultsOf, loadConfig, printConfig, SCHEMA_NAMES, SCHEMAS} from '../src/config/index.js'
import {serverOverrides} from '../src/config/flags.js'
import {parseSocketAddress} from '../src/config/address.js'
import {tempDir} from './harness.js'

/** smol-toml makes null-prototype objects; compare plain data. */
const parse = (text: string): unknown => JSON.parse(JSON.stringify(parseToml(text)))

const dir = tempDir('tracker-config-')
const file = (name: string, text: string): string => {
  const path = join(dir, name)
  writeFileSync(path, text)
  return path
}

/** The ConfigError a load throws; fails the test when it loads. */
function refusal(load: () => unknown, what = 'the config'): string {
  try {
    load()
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`)
    return error.message
  }
  assert.fail(`${what} was accepted`)
}

for (const name of SCHEMA_NAMES) {
  test(`config print ${name}: commented TOML that loads back to exactly the defaults`, () => {
    const text = printConfig(name)
    assert.match(text, /^# /m, 'has comments')
    const defaults = defaultsOf(SCHEMAS[name])
    assert.deepEqual(parse(text), defaults)
    assert.deepEqual(loadConfig(name, {file: file(`${name}.toml`, text)}), defaults)
    // Every key carries help text.
    for (const section of Object.values(SCHEMAS[name].sections)) {
      for (const key of Object.values(section.keys)) assert.ok((key as {help: string}).help.length > 5)
    }
  })
}

test('a partial file takes defaults for the rest; print shows the merged config', () => {
  const path = file('partial.toml', 'socket_workers = 3\n[network]\naddress_ipv4 = "127.0.0.1:7000"\n')
  const c = loadConfig('udp', {file: path})
  const d = defaultsOf(SCHEMAS.udp)
  assert.equal(c.socket_workers, 3)
  assert.equal(c.network.address_ipv4, '127.0.0.1:7000')
  assert.equal(c.network.address_ipv6, d.network.address_ipv6)
  assert.deepEqual(c.protocol, d.protocol)
  assert.deepEqual(parse(printConfig('udp', c)), c)
})

test('every kind of bad config is refused naming the file, key, value and what was expected', () => {
  const cases: [string, string, RegExp[]][] = [
    ['unknown key', 'sockets = 2\n', [/unknown key sockets/, /expected one of .*socket_workers/]],
    ['unknown section', '[netwerk]\nuse_ipv4 = true\n', [/unknown section \[netwerk\]/, /\[network\]/]],
    ['unknown key in a section', '[network]\nadress_ipv4 = "1.2.3.4:5"\n', [/unknown key network\.adress_ipv4/, /address_ipv4/]],
    ['wrong type', 'socket_workers = "two"\n', [/socket_workers = "two" is not valid/, /expected an integer/]],
    ['out of range', '[protocol]\nmax_response_peers = 100000\n', [/protocol\.max_response_peers = 100000 is not valid/, /0\D+200/]],
    ['negative', '[cleaning]\nmax_peer_age = -5\n', [/cleaning\.max_peer_age = -5/]],
    ['float for an integer', 'socket_workers = 1.5\n', [/socket_workers = 1\.5/]],
    ['bad address', '[network]\naddress_ipv4 = "localhost:6969"\n', [/network\.address_ipv4 = "localhost:6969" is not valid/, /expected/]],
    ['IPv6 address in the IPv4 key', '[network]\naddress_ipv4 = "[::]:6969"\n', [/network\.address_ipv4/]],
    ['port out of range', '[network]\naddress_ipv4 = "0.0.0.0:70000"\n', [/70000/]],
    ['bad enum', 'log_level = "loud"\n', [/log_level = "loud" is not valid/, /error|warn|info|debug/]],
    ['bad boolean', '[network]\nuse_ipv4 = "yes"\n', [/network\.use_ipv4 = "yes"/, /true or false|boolean/]],
    ['section given as a value', 'network = 5\n', [/network = 5 is not valid: expected a section/]],
    ['both families off', '[network]\nuse_ipv4 = false\nuse_ipv6 = false\n', [/use_ipv4 and network\.use_ipv6 are both false/]],
    ['TOML syntax', 'socket_workers = 2\n[network\n', [/not valid TOML/, /line 2/]],
  ]
  for (const [what, text, patterns] of cases) {
    const path = file(`bad-${what.replace(/\W+/g, '-')}.toml`, text)
    const message = refusal(() => loadConfig('udp', {file: path}), what)
    assert.ok(message.includes(path), `${what}: names the file: ${message}`)
    for (const p of patterns) assert.match(message, p, `${what}: ${message}`)
  }
  const missing = join(dir, 'nope.toml')
  assert.match(
    refusal(() => loadConfig('udp', {file: missing})),
    new RegExp(`${missing}.*could not be read \\(ENOENT\\)`),
  )
})

test('load-tester configs are checked the same way', () => {
  const path = file('lt.toml', '[requests]\npeer_seeder_probability = 2\n')
  assert.match(
    refusal(() => loadConfig('loadtest-udp', {file: path})),
    /requests\.peer_seeder_probability = 2 is not valid/,
  )
})

test('flags override the file; a bad flag value names the flag', () => {
  const path = file('flags.toml', 'socket_workers = 3\nlog_level = "debug"\n[network]\naddress_ipv4 = "127.0.0.1:7000"\nuse_ipv6 = false\n')
  const c = loadConfig('udp', {file: path, overrides: serverOverrides({ipv4: '127.0.0.2:7001', ipv6: '[::1]:7002', workers: 2, 'log-level': 'warn'})})
  assert.equal(c.network.address_ipv4, '127.0.0.2:7001')
  assert.equal(c.network.address_ipv6, '[::1]:7002')
  assert.equal(c.network.use_ipv6, true, '--ipv6 turns IPv6 on')
  assert.equal(c.socket_workers, 2)
  assert.equal(c.log_level, 'warn')
  const message = refusal(() => loadConfig('udp', {file: path, overrides: serverOverrides({ipv4: 'nowhere'})}))
  assert.match(message, /flag --ipv4: network\.address_ipv4 = "nowhere" is not valid/)
  assert.match(
    refusal(() => loadConfig('udp', {overrides: serverOverrides({workers: -1})})),
    /flag --workers/,
  )
})

test('socket addresses: IPv4, bracketed IPv6, port 0; anything else refused', () => {
  assert.deepEqual(parseSocketAddress('0.0.0.0:6969'), {host: '0.0.0.0', port: 6969, family: 4})
  assert.deepEqual(parseSocketAddress('[::1]:0'), {host: '::1', port: 0, family: 6})
  for (const bad of ['::1:6969', '[127.0.0.1]:1', '1.2.3.4', 'host:80', '1.2.3.4:65536', '[::1]:', '']) {
    assert.equal(parseSocketAddress(bad), undefined, bad)
  }
})

test('default ports do not clash across servers and metrics', () => {
  const udp = defaultsOf(SCHEMAS.udp)
  const http = defaultsOf(SCHEMAS.http)
  const ws = defaultsOf(SCHEMAS.ws)
  const tcp = [
    http.network.address_ipv4,
    ws.network.address_ipv4,
    udp.metrics.prometheus_endpoint_address,
    http.metrics.prometheus_endpoint_address,
    ws.metrics.prometheus_endpoint_address,
  ].map(a => parseSocketAddress(a)!.port)
  assert.equal(new Set(tcp).size, tcp.length, `TCP ports ${tcp.join(', ')}`)
  for (const c of [udp, http, ws]) {
    assert.equal(c.metrics.run_prometheus_endpoint, true)
    assert.match(c.metrics.prometheus_endpoint_address, /^127\.0\.0\.1:/)
  }
})
