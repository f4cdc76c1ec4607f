// A Zynd-style sample agent in TypeScript: no dependencies, answers /health and echoes POSTs.
// The deployer compiles it (esbuild) when the image is built; the container runs plain JavaScript.
import { createServer, IncomingMessage, ServerResponse } from "node:http";
import { reply } from "./reply";

const port: number = Number(process.env.ZYND_SERVER_PORT ?? 5000);

function send(res: ServerResponse, body: unknown): void {
  res.writeHead(200, { "Content-Type": "application/json" });
  res.end(JSON.stringify(body));
}

createServer((req: IncomingMessage, res: ServerResponse) => {
  if (req.method === "POST") {
    let body = "";
    req.on("data", (chunk: Buffer) => (body += chunk));
    req.on("end", () => send(res, { echo: body }));
    return;
  }
  send(res, req.url === "/health" ? { status: "ok" } : reply(req.url ?? "/"));
}).listen(port, "0.0.0.0", () => console.log(`ts-echo-agent listening on ${port}`));
