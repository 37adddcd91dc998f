import { Server, ServerCredentials, status } from "@grpc/grpc-js";
import type { handleServerStreamingCall, handleUnaryCall, UntypedServiceImplementation } from "@grpc/grpc-js";
import { serviceMethods } from "../../src/protocol/method.js";
import { scenarios } from "../scenarios/index.js";
import { answerOrchestrator } from "./child.js";

// `echo`: the transport's limit. A grpc-js server on the service's own
// descriptors that answers every call with canned bytes (the service's answer
// to the scenario's sample request, sent by the orchestrator): no decoding,
// no database, no encoding. A stream replays its canned messages `repeat`
// times, as fast as the client reads (it waits for 'drain').

const canned = new Map<string, { responses: Buffer[]; repeat: number }>();
const identity = (bytes: Buffer) => bytes;
const server = new Server();
for (const service of new Set(scenarios.map((s) => s.method.parent))) {
  const definition = Object.fromEntries(
    Object.entries(serviceMethods(service)).map(([name, method]) => [
      name,
      { ...method, requestDeserialize: identity, responseSerialize: identity },
    ]),
  );
  const handlers: UntypedServiceImplementation = {};
  for (const [name, method] of Object.entries(definition)) {
    const missing = { code: status.UNIMPLEMENTED, details: `no canned answer for ${method.path}` };
    const stream: handleServerStreamingCall<Buffer, Buffer> = (call) => {
      const found = canned.get(method.path);
      if (found === undefined) {
        call.emit("error", missing);
        return;
      }
      const { responses, repeat } = found;
      const total = responses.length * repeat;
      let sent = 0;
      const more = () => {
        while (sent < total && !call.cancelled) {
          if (!call.write(responses[sent++ % responses.length])) return void call.once("drain", more);
        }
        call.end();
      };
      more();
    };
    const unary: handleUnaryCall<Buffer, Buffer> = (_call, callback) => {
      const [response] = canned.get(method.path)?.responses ?? [];
      if (response === undefined) callback(missing);
      else callback(null, response);
    };
    handlers[name] = method.responseStream ? stream : unary;
  }
  server.addService(definition, handlers);
}

const port = await new Promise<number>((resolve, reject) =>
  server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (error, bound) =>
    error ? reject(error) : resolve(bound),
  ),
);
answerOrchestrator({
  port,
  statements: () => 0,
  canned: (path, responses, repeat) => canned.set(path, { responses, repeat }),
  stop: async () => server.forceShutdown(),
});
