// Checks recorded Remnawave traffic against the official zod contract.
//
// stdin: one JSON object a line:
//   {"version": 3 | 2, "command": "CreateUserCommand", "kind": "request" | "response" |
//    "query" | "params", "body": ..., "method"?: "POST", "path"?: "/api/users"}
// stdout: one JSON object a line, same order: {"ok": true} or {"ok": false, "error": "..."}.
// "path"/"method", when given, must match the command's url and HTTP method too.
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';

const require = createRequire(import.meta.url);
const contracts = { 3: require('contract3'), 2: require('contract2') };

// 2.7.x names every request schema `RequestSchema`; 3.x splits body, params and query.
const SCHEMA_NAMES = {
  request: ['RequestBodySchema', 'RequestSchema'],
  params: ['RequestParamSchema', 'RequestSchema'],
  query: ['RequestQuerySchema', 'RequestSchema'],
  response: ['ResponseSchema'],
};

function urlPattern(command) {
  const marker = '\u0000';
  const template = typeof command.url === 'function' ? command.url(marker) : command.url;
  const escaped = template.replace(/\/+$/, '').replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^${escaped.split(marker).join('[^/]+')}/?$`);
}

function check(entry) {
  const contract = contracts[entry.version];
  if (!contract) return `unknown contract version ${entry.version}`;
  const command = contract[entry.command];
  if (!command) return `no ${entry.command} in contract ${entry.version}`;
  if (entry.path !== undefined && !urlPattern(command).test(entry.path)) {
    return `path ${entry.path} does not match ${entry.command}.url`;
  }
  const method = command.endpointDetails?.REQUEST_METHOD;
  if (entry.method !== undefined && method && method.toUpperCase() !== entry.method) {
    return `method ${entry.method} but ${entry.command} is ${method.toUpperCase()}`;
  }
  const names = SCHEMA_NAMES[entry.kind];
  if (!names) return `unknown kind ${entry.kind}`;
  const schema = names.map((name) => command[name]).find(Boolean);
  if (!schema) return `${entry.command} has no ${names.join('/')}`;
  const result = schema.safeParse(entry.body);
  return result.success ? null : JSON.stringify(result.error.issues);
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  if (!line.trim()) continue;
  let error;
  try {
    error = check(JSON.parse(line));
  } catch (exc) {
    error = `bad input: ${exc.message}`;
  }
  process.stdout.write(JSON.stringify(error === null ? { ok: true } : { ok: false, error }) + '\n');
}
