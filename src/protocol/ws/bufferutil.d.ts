/** The native helpers `ws` uses (the package ships no types). */
declare module 'bufferutil' {
  /** XORs `buffer` in place with the 4-byte `mask`. */
  export function unmask(buffer: Uint8Array, mask: Uint8Array): void
  export function mask(source: Uint8Array, mask: Uint8Array, output: Uint8Array, offset: number, length: number): void
  const bufferUtil: {unmask: typeof unmask; mask: typeof mask}
  export default bufferUtil
}
