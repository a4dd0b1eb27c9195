import {readFile} from 'node:fs/promises'
import {createSecureContext} from 'node:tls'

/** A certificate chain and its private key, as PEM. */
export interface TlsMaterial {
  cert: Buffer
  key: Buffer
}

/** The TLS keys of a server config (HTTP and WebTorrent have them). */
export interface TlsConfig {
  enable_tls: boolean
  tls_certificate_path: string
  tls_private_key_path: string
}

export class TlsError extends Error {}

/** Whether a config has TLS keys and turns TLS on. */
export function tlsConfigOf(config: object): TlsConfig | undefined {
  const network = (config as {network?: Partial<TlsConfig>}).network
  return network?.enable_tls ? (network as TlsConfig) : undefined
}

/**
 * Reads and checks a certificate and key: both must parse and belong together. Errors name the
 * file and the config key.
 */
export async function loadTlsMaterial(config: TlsConfig): Promise<TlsMaterial> {
  const read = async (path: string, key: string): Promise<Buffer> => {
    if (path === '') throw new TlsError(`enable_tls is true but [network] ${key} is empty: give the path of a PEM file`)
    try {
      return await readFile(path)
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (error as Error).message
      throw new TlsError(`could not read ${path} ([network] ${key}): ${why}`)
    }
  }
  const cert = await read(config.tls_certificate_path, 'tls_certificate_path')
  const key = await read(config.tls_private_key_path, 'tls_private_key_path')
  const check = (options: {cert?: Buffer; key?: Buffer}, what: string): void => {
    try {
      createSecureContext(options)
    } catch (error) {
      throw new TlsError(`${what}: ${(error as Error).message}`)
    }
  }
  check({cert}, `${config.tls_certificate_path} ([network] tls_certificate_path) is not a PEM certificate`)
  check({key}, `${config.tls_private_key_path} ([network] tls_private_key_path) is not a PEM private key`)
  check({cert, key}, `the key in ${config.tls_private_key_path} does not belong to the certificate in ${config.tls_certificate_path}`)
  return {cert, key}
}
