// A Zynd-style sample agent on Node installed with pnpm, answers /health and echoes POSTs.
const http = require("http");

const port = Number(process.env.ZYND_SERVER_PORT || 5000);

http
  .createServer((req, res) => {
    if (req.method === "POST") {
      let body = "";
      req.on("data", (chunk) => (body += chunk));
      req.on("end", () => {
        console.log(`received ${body.length} bytes on ${req.url}`);
        res.writeHead(200, { "Content-Type": "application/json" });
        res.end(JSON.stringify({ echo: body }));
      });
      return;
    }
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify(req.url === "/health" ? { status: "ok" } : { agent: "pnpm-echo-agent", path: req.url }));
  })
  .listen(port, "0.0.0.0", () => console.log(`pnpm-echo-agent listening on ${port}`));
