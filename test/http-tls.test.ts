/** Built-in TLS: serving HTTPS, reloading the certificate on SIGUSR1, refusing bad files. */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {copyFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import tls from 'node:tls'
import {startHttpTracker, tempDir} from './harness.js'
import {decode, httpGet, query} from './http-client.js'
import {nastyId} from './helpers.js'
import {makeCertificate} from './certs.js'

/** The CN of the certificate a new TLS connection is served. */
function servedName(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({port, host: '127.0.0.1', rejectUnauthorized: false}, () => {
      const cn = socket.getPeerCertificate().subject.CN
      socket.destroy()
      resolve(String(Array.isArray(cn) ? cn[0] : cn))
    })
    socket.once('error', reject)
  })
}

test('HTTPS: announces over TLS on IPv4 and IPv6; SIGUSR1 reloads the certificate; a bad file keeps the old one', async () => {
  const dir = tempDir()
  const first = makeCertificate(dir, 'first')
  const second = makeCertificate(dir, 'second')
  const cert = join(dir, 'live.crt')
  const key = join(dir, 'live.key')
  copyFileSync(first.cert, cert)
  copyFileSync(first.key, key)
  const t = await startHttpTracker({network: {enable_tls: true, tls_certificate_path: cert, tls_private_key_path: key}})
  try {
    assert.ok(t.tracker.listeners.some(l => l.service === 'https' && l.host === '127.0.0.1'))
    const h = nastyId()
    const path = (port: number) => '/announce?' + query({info_hash: h, peer_id: nastyId(), port, uploaded: 0, downloaded: 0, left: 5})
    await httpGet(t.port4, path(1), {tls: true})
    const r = decode((await httpGet(t.port6, path(2), {tls: true, host: '::1'})).body)
    assert.equal(r.incomplete, 1)
    assert.equal(await servedName(t.port4), 'first')

    // A broken certificate: the reload reports the error, the old pair stays in force.
    writeFileSync(cert, 'not a certificate\n')
    let status = await t.tracker.reloadAccessList()
    assert.equal(status.tls?.ok, false)
    assert.match(status.tls!.error!, /live\.crt.*tls_certificate_path/)
    assert.equal(await servedName(t.port4), 'first')
    // A key that does not match the certificate.
    copyFileSync(second.cert, cert)
    status = await t.tracker.reloadAccessList()
    assert.equal(status.tls?.ok, false)
    assert.match(status.tls!.error!, /does not belong/)
    assert.equal(await servedName(t.port4), 'first')
    // The new pair: new connections get it.
    copyFileSync(second.key, key)
    status = await t.tracker.reloadAccessList()
    assert.deepEqual(status.tls, {ok: true, error: null})
    assert.equal(await servedName(t.port4), 'second')
    const again = decode((await httpGet(t.port4, path(3), {tls: true})).body)
    assert.equal(again.incomplete, 2)
  } finally {
    await t.stop()
  }
})

test('HTTPS with 2 workers: the reloaded certificate reaches every worker', async () => {
  const dir = tempDir()
  const first = makeCertificate(dir, 'first')
  const second = makeCertificate(dir, 'second')
  const cert = join(dir, 'live.crt')
  const key = join(dir, 'live.key')
  copyFileSync(first.cert, cert)
  copyFileSync(first.key, key)
  const t = await startHttpTracker({socket_workers: 2, network: {enable_tls: true, tls_certificate_path: cert, tls_private_key_path: key}})
  try {
    copyFileSync(second.cert, cert)
    copyFileSync(second.key, key)
    assert.deepEqual((await t.tracker.reloadAccessList()).tls, {ok: true, error: null})
    // Connections are spread over both workers; every one gets the new certificate.
    const names = await Promise.all(Array.from({length: 12}, () => servedName(t.port4)))
    assert.deepEqual([...new Set(names)], ['second'])
  } finally {
    await t.stop()
  }
})

test('a missing or bad TLS file refuses to start, naming the file and the key', async () => {
  const dir = tempDir()
  const good = makeCertificate(dir, 'good')
  await assert.rejects(
    startHttpTracker({network: {enable_tls: true, tls_certificate_path: join(dir, 'missing.crt'), tls_private_key_path: good.key}}),
    /missing\.crt \(\[network\] tls_certificate_path\): no such file/,
  )
  const bad = join(dir, 'bad.key')
  writeFileSync(bad, '-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n')
  await assert.rejects(
    startHttpTracker({network: {enable_tls: true, tls_certificate_path: good.cert, tls_private_key_path: bad}}),
    /bad\.key \(\[network\] tls_private_key_path\) is not a PEM private key/,
  )
  await assert.rejects(startHttpTracker({network: {enable_tls: true}}), /tls_certificate_path is empty/)
})
