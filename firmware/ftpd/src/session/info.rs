//! The information commands: SIZE, MDTM, MLST, FEAT, OPTS, HELP, SITE and
//! STAT (a child module of `session`, so it sees the session's fields).

use super::*;

impl<K: Copy + PartialEq + core::fmt::Debug, F> Session<K, F> {
    /// SIZE, MDTM (facts of a regular file), MLST (the facts of a file or
    /// directory) and STAT (the session, or `ls -l` of a path): resolve,
    /// metadata, one reply.
    pub(super) fn file_facts<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
        k: u8,
        arg: &str,
    ) {
        let arg = if k == verb::STAT {
            if self.status(ctx, arg) {
                return;
            }
            skip_options(arg)
        } else {
            arg
        };
        let mut p = Paths::new();
        let Some(Paths { v, s }) = self.resolve(ctx, arg, &mut p) else {
            return;
        };
        // Borrowed where it was returned (moving it out copied it).
        let meta = ctx.fs.metadata(s.as_str());
        let m = match &meta {
            Ok(m) => m,
            Err(e) => return self.fail(ctx, *e),
        };
        if k == verb::STAT || k == verb::MLST {
            // Both multi-line: a first line naming the path, one line of
            // facts (STAT: `ls -l` columns and the name; MLST: facts and
            // the path), an end line with the first line's code. One
            // reply call for both.
            let stat = k == verb::STAT;
            let dir = stat && m.kind == Kind::Dir;
            let (code, head, end) = if stat {
                (R::FileStatus, "Status of \x01:", "End of status.")
            } else {
                (R::FileActionOk, "Listing \x01", "End.")
            };
            let (writable, utc, mask) = (self.writable(ctx.config), ctx.utc, self.facts);
            let path = v.as_str();
            self.send(ctx, |w| {
                w.begin_first(code).fill(head, path, 0).end();
                if dir {
                    // The listing follows from `step_transfer`.
                    return;
                }
                w.begin_cont();
                if stat {
                    list::write_list_columns(w, m, writable, utc);
                    w.text(v.file_name());
                } else {
                    list::write_facts(w, m, writable, mask);
                    w.text(path);
                }
                w.end();
                w.last(code, end);
            });
            if dir {
                self.aux.clone_from(s);
                self.xfer = Some(Transfer {
                    op: Op::List {
                        format: Format::List,
                        index: 0,
                    },
                    sock: self.ctrl,
                    control: true,
                    draining: false,
                    bytes: U64(0),
                    last_progress: ctx.now,
                });
            }
            return;
        }
        // SIZE and MDTM: one reply call for the one-line answers.
        let msg = match (k == verb::MDTM, m.modified) {
            _ if m.kind != Kind::File => Msg::NotAFile,
            (false, _) => Msg::Size,
            (true, Some(t)) => {
                return self.send(ctx, |w| {
                    list::write_timeval(w.begin(R::FileStatus), &t);
                    w.end()
                });
            }
            (true, None) => Msg::NoModificationTime,
        };
        self.tell(ctx, msg, "", m.size);
    }

    // ---- information ---------------------------------------------------------

    pub(super) fn feat<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
    ) {
        let mask = self.facts;
        self.send(ctx, |w| {
            // 211 (system status). Short enough never to be cut: the
            // lines as they go out, the fixed ones as literals.
            w.raw(b"211-Features:\r\n EPRT\r\n EPSV\r\n MDTM\r\n MLST ");
            for &(name, bit) in &facts::NAMES {
                w.text(name);
                if mask & bit != 0 {
                    w.byte(b'*');
                }
                w.byte(b';');
            }
            w.raw(b"\r\n PASV\r\n REST STREAM\r\n SIZE\r\n TVFS\r\n UTF8\r\n211 End\r\n");
        });
    }

    pub(super) fn opts<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
        arg: &str,
    ) {
        let (name, value) = split_word(arg.as_bytes());
        if eq_ic(name, b"UTF8") || eq_ic(name, b"UTF-8") {
            let value = trim_bytes(value);
            if eq_ic(value, b"ON") || value.is_empty() {
                self.say(ctx, Msg::Utf8On);
            } else {
                self.say(ctx, Msg::Utf8Off);
            }
        } else if eq_ic(name, b"MLST") {
            let mut mask = 0;
            // The facts between `;`s, trimmed.
            let mut rest = Some(value);
            while let Some(r) = rest {
                let (f, more) = match r.iter().position(|&c| c == b';') {
                    Some(i) => (&r[..i], r.get(i + 1..)),
                    None => (r, None),
                };
                for &(n, bit) in &facts::NAMES {
                    if eq_ic(trim_bytes(f), n.as_bytes()) {
                        mask |= bit;
                    }
                }
                rest = more;
            }
            self.facts = mask;
            self.send(ctx, |w| {
                // 200 (ok), short enough never to be cut.
                w.raw(b"200 MLST OPTS ");
                for &(name, bit) in &facts::NAMES {
                    if mask & bit != 0 {
                        w.text(name).byte(b';');
                    }
                }
                w.raw(b"\r\n");
            });
        } else {
            self.say(ctx, Msg::BadOption);
        }
    }

    pub(super) fn help<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
        arg: &str,
    ) {
        let arg = trim(arg);
        if !arg.is_empty() {
            // One reply call: the variant picked first.
            let msg = if verb::implemented().any(|c| eq_ic(c, arg.as_bytes())) {
                Msg::HelpSupported
            } else if arg.bytes().any(|b| b < 0x20 || b == 0x7f) {
                // Never echo control characters (a terminal escape in a
                // reply line): found by the network fuzzer.
                Msg::HelpUnknown
            } else {
                Msg::HelpUnknownNamed
            };
            self.tell(ctx, msg, arg, 0);
            return;
        }
        self.send(ctx, |w| {
            // 214 (help). Short enough never to be cut: the lines as they
            // go out, twelve verbs a line.
            w.raw(b"214-The following commands are recognized:\r\n");
            let mut n = 0;
            for c in verb::implemented() {
                w.byte(b' ').raw(c);
                n += 1;
                if n == 12 {
                    n = 0;
                    w.raw(b"\r\n");
                }
            }
            w.raw(b"\r\n214 Help OK.\r\n");
        });
    }

    pub(super) fn site<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
        arg: &str,
    ) {
        if eq_ic(split_word(arg.as_bytes()).0, b"HELP") {
            self.send(ctx, |w| {
                // 214 (help), as it goes out.
                w.raw(b"214-SITE commands:\r\n HELP\r\n214 End.\r\n");
            });
        } else {
            self.say(ctx, Msg::UnknownSite);
        }
    }

    /// STAT during a transfer, or without an argument (the session's
    /// status); false for `STAT path` (answered by `file_facts`).
    fn status<N: Net<Socket = K>, S: Storage<File = F>>(
        &mut self,
        ctx: &mut Ctx<'_, '_, N, S>,
        arg: &str,
    ) -> bool {
        if let Some(t) = &self.xfer {
            let bytes = t.bytes;
            self.tell(ctx, Msg::StatTransfer, "", bytes.0);
            return true;
        }
        if arg.is_empty() {
            let (open, max) = (ctx.sessions_open, ctx.config.max_sessions);
            let files = ctx.fs.open_files();
            let user = match self.account(ctx.config) {
                Some((_, Some(a))) => a.user,
                Some((Who::Anonymous, _)) => "anonymous",
                _ => "(not logged in)",
            };
            self.send(ctx, |w| {
                // The lines before the last as one piece: cut (never run
                // into the last line) only after a very long user name.
                w.begin_first(R::SystemStatus)
                    .raw(b"FTP server status:\r\n Connected to ")
                    .ip(self.peer.ip())
                    .fill("\r\n Logged in as \x01\r\n TYPE: ", user, 0)
                    .fill(
                        "\x01, STRUcture: File, MODE: Stream\r\n Sessions: \x04 of ",
                        if self.ty == TransferType::Ascii {
                            "ASCII"
                        } else {
                            "BINARY"
                        },
                        open as u64,
                    )
                    .fill("\x04\r\n Open files: ", "", max as u64)
                    .num(files as u64)
                    .end();
                w.last(R::SystemStatus, "End of status.");
            });
            return true;
        }
        false
    }
}
