import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** Pem is one certificate with its key, as files (for TLS_*) and contents (for client credentials). */
export interface Pem {
  certFile: string;
  keyFile: string;
  cert: Buffer;
  key: Buffer;
}

/** Certificates are throw-away PKI for one test file: a CA with a server and a client, and a rogue CA's client. */
export interface Certificates {
  ca: Pem;
  /** server is valid for 127.0.0.1 and localhost. */
  server: Pem;
  /** client is signed by ca. */
  client: Pem;
  /** rogue is a client certificate signed by another CA that calls itself the same name. */
  rogue: Pem;
  remove(): Promise<void>;
}

const ecKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

async function pem(dir: string, name: string): Promise<Pem> {
  const certFile = path.join(dir, `${name}.crt`);
  const keyFile = path.join(dir, `${name}.key`);
  return { certFile, keyFile, cert: await readFile(certFile), key: await readFile(keyFile) };
}

async function authority(dir: string, name: string): Promise<Pem> {
  const config = path.join(dir, `${name}.cnf`);
  await writeFile(
    config,
    [
      "[req]",
      "distinguished_name = dn",
      "prompt = no",
      "[dn]",
      "CN = blog-service test CA",
      "[ext]",
      "basicConstraints = critical, CA:TRUE",
      "keyUsage = critical, keyCertSign, cRLSign",
    ].join("\n"),
  );
  const out = ["-keyout", path.join(dir, `${name}.key`), "-out", path.join(dir, `${name}.crt`)];
  await run("openssl", ["req", "-x509", ...ecKey, ...out, "-days", "1", "-config", config, "-extensions", "ext"]);
  return pem(dir, name);
}

async function signed(dir: string, ca: Pem, name: string, extensions: string[]): Promise<Pem> {
  const csr = path.join(dir, `${name}.csr`);
  const ext = path.join(dir, `${name}.ext`);
  await run("openssl", [
    "req",
    "-new",
    ...ecKey,
    "-keyout",
    path.join(dir, `${name}.key`),
    "-out",
    csr,
    "-subj",
    `/CN=${name}`,
  ]);
  await writeFile(ext, extensions.join("\n"));
  await run("openssl", [
    ...["x509", "-req", "-in", csr, "-CA", ca.certFile, "-CAkey", ca.keyFile, "-set_serial", "1"],
    ...["-out", path.join(dir, `${name}.crt`), "-days", "1", "-extfile", ext],
  ]);
  return pem(dir, name);
}

/** makeCertificates runs openssl to create fresh certificates in a temporary directory. */
export async function makeCertificates(): Promise<Certificates> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "blog-service-certs-"));
  const ca = await authority(dir, "ca");
  const rogueCa = await authority(dir, "rogue-ca");
  const clientExt = ["extendedKeyUsage = clientAuth"];
  return {
    ca,
    server: await signed(dir, ca, "localhost", [
      "subjectAltName = IP:127.0.0.1, DNS:localhost",
      "extendedKeyUsage = serverAuth",
    ]),
    client: await signed(dir, ca, "billing", clientExt),
    rogue: await signed(dir, rogueCa, "rogue", clientExt),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
