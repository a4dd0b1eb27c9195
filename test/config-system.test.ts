import {test} from 'node:test'
import assert from 'node:assert/strict'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {parse as parseToml} from 'smol-toml'
import {ConfigError, defaultsOf, loadConfig, printAllConfig, printConfig, SCHEMA_NAMES, SCHEMAS, valueFromTrackerConfig} from '../src/config/index.js'
import {serverOverrides} from '../src/config/flags.js'
import {checkSocketAddress, parseSocketAddress} from '../src/config/address.js'
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
    [
      'bad address',
      '[network]\naddress_ipv4 = "tracker.example:6969"\n',
      [
        /network\.address_ipv4 = "tracker.example:6969" is not valid: "tracker.example" is a host name: write an IP address \(only localhost is accepted, as 127\.0\.0\.1\); expected/,
      ],
    ],
    [
      'localhost in the IPv6 key',
      '[network]\naddress_ipv6 = "localhost:6969"\n',
      [/localhost means 127\.0\.0\.1 \(IPv4\) here; for IPv6 loopback write "\[::1\]:6969"/],
    ],
    ['IPv6 without brackets', '[network]\naddress_ipv6 = "::1:6969"\n', [/an IPv6 address and its port are written with brackets/]],
    ['IPv6 address in the IPv4 key', '[network]\naddress_ipv4 = "[::]:6969"\n', [/network\.address_ipv4/]],
    ['port out of range', '[network]\naddress_ipv4 = "0.0.0.0:70000"\n', [/port 70000 is above 65535/]],
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

test('localhost in an address is 127.0.0.1, in the file and in flags; config print shows the address bound', () => {
  const path = file('localhost.toml', '[network]\naddress_ipv4 = "localhost:7000"\n[metrics]\nprometheus_endpoint_address = "LocalHost:9100"\n')
  const c = loadConfig('udp', {file: path})
  assert.equal(c.network.address_ipv4, '127.0.0.1:7000')
  assert.equal(c.metrics.prometheus_endpoint_address, '127.0.0.1:9100')
  assert.match(printConfig('udp', c), /^address_ipv4 = "127\.0\.0\.1:7000"$/m)
  const flagged = loadConfig('http', {overrides: serverOverrides({ipv4: 'localhost:0', metrics: 'localhost:0'})})
  assert.equal(flagged.network.address_ipv4, '127.0.0.1:0')
  assert.equal(flagged.metrics.prometheus_endpoint_address, '127.0.0.1:0')
  assert.equal(loadConfig('loadtest-udp', {overrides: [{path: 'server_address', value: 'localhost:6969', flag: '--server'}]}).server_address, '127.0.0.1:6969')
  assert.deepEqual(checkSocketAddress('[localhost]:1', 6), {
    ok: false,
    reason: 'localhost means 127.0.0.1 (IPv4), written without brackets; for IPv6 loopback write "[::1]:1"',
  })
  assert.deepEqual(checkSocketAddress('[::1]:6969', 6), {ok: true, text: '[::1]:6969', address: {host: '::1', port: 6969, family: 6}})
  assert.deepEqual(checkSocketAddress('nonsense'), {ok: false})
})

test('one family named on the command line turns the other off, whatever the file says; --no-ipv4, --no-ipv6, --metrics', () => {
  const both = file(
    'both-families.toml',
    '[network]\nuse_ipv4 = true\nuse_ipv6 = true\naddress_ipv6 = "[::]:7000"\n[metrics]\nrun_prometheus_endpoint = false\n',
  )
  const load = (flags: Parameters<typeof serverOverrides>[0]) => loadConfig('http', {file: both, overrides: serverOverrides(flags)}).network
  const only4 = load({ipv4: '127.0.0.1:7001'})
  assert.deepEqual([only4.use_ipv4, only4.use_ipv6, only4.address_ipv4], [true, false, '127.0.0.1:7001'], '--ipv4 alone: IPv6 off')
  const only6 = load({ipv6: '[::1]:7002'})
  assert.deepEqual([only6.use_ipv4, only6.use_ipv6, only6.address_ipv6], [false, true, '[::1]:7002'], '--ipv6 alone: IPv4 off')
  const named = load({ipv4: '127.0.0.1:7001', ipv6: '[::1]:7002'})
  assert.deepEqual([named.use_ipv4, named.use_ipv6], [true, true], 'both named: both on')
  const no4 = load({'no-ipv4': true})
  assert.deepEqual([no4.use_ipv4, no4.use_ipv6, no4.address_ipv6], [false, true, '[::]:7000'], '--no-ipv4: IPv6 as the file says')
  const no6 = load({'no-ipv6': true, ipv4: '127.0.0.1:7001'})
  assert.deepEqual([no6.use_ipv4, no6.use_ipv6], [true, false])
  const v4off = file('v4-off.toml', '[network]\nuse_ipv4 = false\n')
  assert.equal(loadConfig('udp', {file: v4off, overrides: serverOverrides({ipv4: '127.0.0.1:7001'})}).network.use_ipv4, true, '--ipv4 turns IPv4 on')
  assert.match(
    refusal(() => loadConfig('udp', {overrides: serverOverrides({'no-ipv4': true, 'no-ipv6': true})})),
    /^flag --no-ipv4 and flag --no-ipv6: network\.use_ipv4 and network\.use_ipv6 are both false/,
  )
  assert.match(
    refusal(() => loadConfig('udp', {file: v4off, overrides: serverOverrides({'no-ipv6': true})})),
    new RegExp(`^config file ${v4off} and flag --no-ipv6: network\\.use_ipv4 and network\\.use_ipv6 are both false`),
  )
  const metrics = loadConfig('http', {file: both, overrides: serverOverrides({metrics: '127.0.0.1:9999'})}).metrics
  assert.deepEqual(metrics, {run_prometheus_endpoint: true, prometheus_endpoint_address: '127.0.0.1:9999'}, '--metrics sets the address and turns it on')
  assert.match(
    refusal(() => loadConfig('udp', {overrides: serverOverrides({metrics: 'metrics.local:1'})})),
    /^flag --metrics: metrics\.prometheus_endpoint_address = "metrics\.local:1" is not valid: .*host name/,
  )
})

test('a tracker config tells its protocol by its keys (top -c, accesslist reload -c); unclear only when the protocols differ in the value', () => {
  const metricsOf = (path: string | undefined, protocol?: 'udp' | 'http' | 'ws' | 'all') =>
    valueFromTrackerConfig(path, protocol, '[metrics] prometheus_endpoint_address', c => c.metrics.prometheus_endpoint_address)
  for (const name of ['udp', 'http', 'ws'] as const) {
    const printed = file(`printed-${name}.toml`, printConfig(name))
    assert.equal(metricsOf(printed), defaultsOf(SCHEMAS[name]).metrics.prometheus_endpoint_address, `a printed ${name} config`)
    assert.equal(
      valueFromTrackerConfig(printed, undefined, 'pid_file', c => c.pid_file),
      `./tracker-${name}.pid`,
    )
  }
  // enable_tls: HTTP's or WS's. Their metrics ports differ; the pid file is in the file.
  const tls = file('tls.toml', 'pid_file = "/run/t.pid"\n[network]\nenable_tls = false\n')
  assert.equal(
    valueFromTrackerConfig(tls, undefined, 'pid_file', c => c.pid_file),
    '/run/t.pid',
  )
  assert.equal(metricsOf(tls, 'ws'), '127.0.0.1:9002')
  const unclear = refusal(() => metricsOf(tls))
  assert.equal(
    unclear,
    `config file ${tls} fits the http and ws tracker configs, and they differ in [metrics] prometheus_endpoint_address ` +
      '(http: 127.0.0.1:9001, ws: 127.0.0.1:9002): say which with --protocol http|ws, or set [metrics] prometheus_endpoint_address in the file',
  )
  const shared = file('shared.toml', '[metrics]\nprometheus_endpoint_address = "127.0.0.1:9500"\n')
  assert.equal(metricsOf(shared), '127.0.0.1:9500', 'shared keys only, and the value is in the file')
  assert.match(
    refusal(() => valueFromTrackerConfig(shared, undefined, 'pid_file', c => c.pid_file)),
    /fits the udp, http, ws and all tracker configs, .*--protocol udp\|http\|ws\|all/,
  )
  const typo = file('typo.toml', '[network]\nenable_tsl = true\n')
  const none = refusal(() => metricsOf(typo))
  assert.match(
    none,
    new RegExp(`^config file ${typo} is not a udp, http, ws or all tracker config:\\n  as udp: unknown key network\\.enable_tsl: keys in \\[network\\] are `),
  )
  assert.match(none, /\n {2}as http: unknown key network\.enable_tsl/)
  assert.match(none, /\n {2}as ws: unknown key network\.enable_tsl/)
  assert.match(
    refusal(() => metricsOf(tls, 'udp')),
    /unknown key network\.enable_tls/,
    '--protocol udp reads it as UDP',
  )
  assert.equal(metricsOf(undefined), '127.0.0.1:9000', 'no file: the UDP defaults')
  assert.equal(metricsOf(undefined, 'http'), '127.0.0.1:9001')
  assert.match(none, /\n {2}as all: unknown section \[network\]/)
  // `serve all`'s file: its [udp]/[http]/[ws] tables tell it apart.
  const all = file('all.toml', printAllConfig())
  assert.equal(metricsOf(all), '127.0.0.1:9000')
  assert.equal(
    valueFromTrackerConfig(all, undefined, 'pid_file', c => c.pid_file),
    './tracker-all.pid',
  )
  const allTables = file('all-tables.toml', 'pid_file = "/run/a.pid"\n[udp.network]\nbatched_io = false\n')
  assert.equal(
    valueFromTrackerConfig(allTables, undefined, 'pid_file', c => c.pid_file),
    '/run/a.pid',
  )
  assert.equal(metricsOf(undefined, 'all'), '127.0.0.1:9000')
})

test('log_format: text by default in every server config and in print; the file and --log-format set it; other values refused', () => {
  for (const name of ['udp', 'http', 'ws'] as const) {
    assert.equal(defaultsOf(SCHEMAS[name]).log_format, 'text')
    assert.match(printConfig(name), /^log_format = "text"$/m, name)
  }
  const path = file('format.toml', 'log_format = "json"\n')
  const c = loadConfig('http', {file: path})
  assert.equal(c.log_format, 'json')
  assert.match(printConfig('http', c), /^log_format = "json"$/m)
  assert.equal(loadConfig('http', {file: path, overrides: serverOverrides({'log-format': 'text'})}).log_format, 'text')
  assert.match(
    refusal(() => loadConfig('udp', {file: file('bad-format.toml', 'log_format = "xml"\n')})),
    /log_format = "xml" is not valid/,
  )
  assert.match(
    refusal(() => loadConfig('udp', {overrides: serverOverrides({'log-format': 'xml'})})),
    /flag --log-format/,
  )
})
