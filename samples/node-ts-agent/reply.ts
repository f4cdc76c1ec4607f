// A local module: the build bundles it into the compiled agent.
export interface Reply {
  agent: string;
  path: string;
  typescript: true;
}

export function reply(path: string): Reply {
  return { agent: "ts-echo-agent", path, typescript: true };
}
