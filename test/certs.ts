/** Certificates for TLS tests, made fresh by openssl (Debian's openssl package). */
import {execFileSync} from 'node:child_process'
import {join} from 'node:path'

/**
 * A self-signed certificate and key (PEM) for CN `name`, also valid for localhost, 127.0.0.1 and
 * ::1 (clients check the subjectAltName), made with openssl.
 */
export function makeCertificate(dir: string, name: string): {cert: string; key: string} {
  const cert = join(dir, `${name}.crt`)
  const key = join(dir, `${name}.key`)
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
      '-addext',
      `subjectAltName=DNS:${name},DNS:localhost,IP:127.0.0.1,IP:::1`,
      '-keyout',
      key,
      '-out',
      cert,
    ],
    {stdio: 'ignore'},
  )
  return {cert, key}
}
