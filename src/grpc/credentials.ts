import { readFileSync } from "node:fs";
import { ServerCredentials } from "@grpc/grpc-js";

/** TlsFiles names the PEM files of the server's TLS identity (TLS_CERT, TLS_KEY, TLS_CLIENT_CA). */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
  /** clientCaFile turns on mutual TLS: every client must present a certificate this CA signed. */
  clientCaFile: string | undefined;
}

function readPem(file: string, variable: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new Error(`${variable}: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? "error"})`, {
      cause: error,
    });
  }
}

/**
 * serverCredentials builds what the server listens with: plaintext without
 * TLS files, TLS with them, and mutual TLS (a client certificate signed by the
 * client CA required on every connection, checked in the handshake, before
 * any call) when a client CA is given. Files are read once, at start-up.
 */
export function serverCredentials(tls: TlsFiles | undefined): ServerCredentials {
  if (tls === undefined) return ServerCredentials.createInsecure();
  const identity = [{ cert_chain: readPem(tls.certFile, "TLS_CERT"), private_key: readPem(tls.keyFile, "TLS_KEY") }];
  if (tls.clientCaFile === undefined) return ServerCredentials.createSsl(null, identity, false);
  return ServerCredentials.createSsl(readPem(tls.clientCaFile, "TLS_CLIENT_CA"), identity, true);
}
