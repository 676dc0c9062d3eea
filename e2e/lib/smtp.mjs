// A small SMTP server for the browser tests (RFC 5321's commands a client sends to a relay that
// needs no login: EHLO, MAIL, RCPT, DATA, QUIT), keeping each message's envelope, headers and
// body, so that a test reads what agora sent.

import net from 'node:net';

export async function startSmtp() {
  const messages = [];
  const server = net.createServer((socket) => {
    socket.setEncoding('utf8');
    let buf = '';
    let data = null;
    let envelope = { from: null, to: [] };
    const say = (line) => socket.write(`${line}\r\n`);
    say('220 e2e.test ESMTP');
    socket.on('data', (chunk) => {
      buf += chunk;
      let i;
      while ((i = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (data !== null) {
          if (line === '.') {
            const raw = data.join('\r\n');
            const [head, ...rest] = raw.split('\r\n\r\n');
            const headers = {};
            for (const h of head.replace(/\r\n[ \t]+/g, ' ').split('\r\n')) {
              const k = h.indexOf(':');
              if (k > 0) headers[h.slice(0, k).toLowerCase()] = h.slice(k + 1).trim();
            }
            messages.push({ ...envelope, headers, body: rest.join('\r\n'), raw });
            envelope = { from: null, to: [] };
            data = null;
            say('250 2.0.0 accepted');
          } else {
            data.push(line.startsWith('..') ? line.slice(1) : line);
          }
          continue;
        }
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO' || verb === 'HELO') say('250 e2e.test');
        else if (verb === 'MAIL') { envelope.from = line.slice(10).replace(/[<>]/g, '').trim(); say('250 2.1.0 ok'); }
        else if (verb === 'RCPT') { envelope.to.push(line.slice(8).replace(/[<>]/g, '').trim()); say('250 2.1.5 ok'); }
        else if (verb === 'DATA') { data = []; say('354 end with .'); }
        else if (verb === 'QUIT') { say('221 2.0.0 bye'); socket.end(); }
        else if (verb === 'RSET' || verb === 'NOOP') say('250 ok');
        else say('502 5.5.2 not implemented');
      }
    });
    socket.on('error', () => {});
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  return {
    port: server.address().port,
    messages,
    /** The first message `to` receives, waiting at most `ms`. */
    async waitFor(to, ms = 20_000) {
      const end = Date.now() + ms;
      while (Date.now() < end) {
        const m = messages.find((x) => x.to.includes(to));
        if (m) return m;
        await new Promise((ok) => setTimeout(ok, 100));
      }
      throw new Error(`no message to ${to} in ${ms} ms (${messages.length} received)`);
    },
    close: () => new Promise((ok) => server.close(ok)),
  };
}

/** A quoted-printable or 8-bit body as text. */
export function bodyText(m) {
  const qp = /quoted-printable/i.test(m.headers['content-transfer-encoding'] ?? '');
  if (!qp) {
    if (/base64/i.test(m.headers['content-transfer-encoding'] ?? '')) return Buffer.from(m.body.replace(/\s+/g, ''), 'base64').toString('utf8');
    return m.body;
  }
  const bytes = m.body.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)));
  return Buffer.from(bytes, 'latin1').toString('utf8');
}
