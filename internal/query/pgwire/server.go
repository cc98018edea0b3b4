package pgwire

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgtype"
	wire "github.com/jeroenrinzema/psql-wire"
	"github.com/jeroenrinzema/psql-wire/codes"
	pgerror "github.com/jeroenrinzema/psql-wire/errors"

	"github.com/sluice-project/sluice/internal/query"
)

// Server is the PostgreSQL protocol listener.
type Server struct {
	e      *query.Engine
	cfg    query.PGWireConfig
	logger *slog.Logger
	srv    *wire.Server
	ln     net.Listener
	done   chan error
}

// New returns a server for e; Start listens.
func New(e *query.Engine, cfg query.PGWireConfig, logger *slog.Logger) (*Server, error) {
	s := &Server{e: e, cfg: cfg, logger: logger}
	opts := []wire.OptionFn{
		wire.Logger(logger),
		wire.Version(ServerVersion),
		wire.ExtendTypes(extendTypes),
		wire.GlobalParameters(wire.Parameters{
			"DateStyle": "ISO, MDY", "TimeZone": "UTC", "integer_datetimes": "on",
			"standard_conforming_strings": "on", "IntervalStyle": "postgres", "application_name": "",
		}),
	}
	if cfg.Username != "" {
		opts = append(opts, wire.SessionAuthStrategy(wire.ClearTextPassword(s.checkPassword)))
	}
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("pgwire tls: load %s and %s: %w", cfg.TLSCert, cfg.TLSKey, err)
		}
		opts = append(opts, wire.TLSConfig(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
	}
	srv, err := wire.NewServer(s.parse, opts...)
	if err != nil {
		return nil, fmt.Errorf("pgwire: %w", err)
	}
	s.srv = srv
	return s, nil
}

func (s *Server) checkPassword(ctx context.Context, database, username, password string) (context.Context, bool, error) {
	ok := subtle.ConstantTimeCompare([]byte(username), []byte(s.cfg.Username)) == 1 &&
		subtle.ConstantTimeCompare([]byte(password), []byte(s.cfg.Password)) == 1
	if !ok {
		s.logger.Warn("pgwire: login refused", "user", username)
	}
	return ctx, ok, nil
}

// Start listens on cfg.Listen and serves in the background.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		if strings.Contains(err.Error(), "address already in use") {
			return fmt.Errorf("pgwire listen %s: the port is taken by another process (a PostgreSQL server?); choose another with query.pgwire.listen: %w", s.cfg.Listen, err)
		}
		return fmt.Errorf("pgwire listen %s: %w", s.cfg.Listen, err)
	}
	s.ln = ln
	s.done = make(chan error, 1)
	go func() { s.done <- s.srv.Serve(ln) }()
	return nil
}

// Addr returns the listening address (after Start).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops accepting, waits for sessions to end until ctx is done, and closes the rest.
func (s *Server) Close(ctx context.Context) error {
	if s.ln == nil {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	if serr := <-s.done; err == nil {
		err = serr
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		err = nil // sessions still open are cut off
	}
	return err
}

// parse prepares one statement: its columns and parameters are what Describe reports.
func (s *Server) parse(ctx context.Context, q wire.Query) (wire.PreparedStatements, error) {
	text := Rewrite(q.Query)
	cmd, name, value := classify(text)
	switch cmd {
	case cmdTxNoop:
		tag := map[string]string{"BEGIN": "BEGIN", "START": "BEGIN", "COMMIT": "COMMIT", "END": "COMMIT", "ROLLBACK": "ROLLBACK", "ABORT": "ROLLBACK"}[name]
		return wire.Prepared(wire.NewStatement(func(ctx context.Context, w wire.DataWriter, _ []wire.Parameter) error {
			return w.Complete(tag)
		})), nil
	case cmdSetNoop:
		return wire.Prepared(wire.NewStatement(func(ctx context.Context, w wire.DataWriter, _ []wire.Parameter) error {
			return w.Complete("SET")
		})), nil
	case cmdShow:
		cols := wire.Columns{{Name: name, Oid: pgtype.TextOID, Width: -1}}
		return wire.Prepared(wire.NewStatement(func(ctx context.Context, w wire.DataWriter, _ []wire.Parameter) error {
			if err := w.Row([]any{value}); err != nil {
				return err
			}
			return w.Complete("SHOW")
		}, wire.WithColumns(cols))), nil
	}
	if query.IsEmpty(text) {
		return wire.Prepared(wire.NewStatement(func(ctx context.Context, w wire.DataWriter, _ []wire.Parameter) error {
			return w.Empty()
		})), nil
	}
	p, err := s.e.Prepare(ctx, text)
	if err != nil {
		return nil, pgError(err)
	}
	cols := p.Columns()
	params := p.Params()
	p.Close() // prepared again when executed: the views may change in between
	oids := make([]uint32, len(params))
	for i, c := range params {
		oids[i] = paramOID(c)
	}
	for i, o := range q.ParameterOIDs { // types the client chose win
		if i < len(oids) && o != 0 {
			oids[i] = o
		}
	}
	wcols := columnsOf(cols)
	run := func(ctx context.Context, w wire.DataWriter, ps []wire.Parameter) error {
		args := make([]any, len(ps))
		for i, prm := range ps {
			oid := uint32(0)
			if i < len(oids) {
				oid = oids[i]
			}
			a, err := argOf(prm, oid)
			if err != nil {
				return pgerror.WithCode(fmt.Errorf("parameter $%d: %w", i+1, err), codes.InvalidParameterValue)
			}
			args[i] = a
		}
		n := 0
		err := s.e.Query(ctx, query.Request{SQL: text, Args: args}, func(rows *query.Rows) error {
			got := rows.Columns()
			if len(got) != len(wcols) {
				return fmt.Errorf("the result has %d columns, %d were described: the tables changed in between; run the query again", len(got), len(wcols))
			}
			vals := make([]any, len(got))
			out := make([]any, len(got))
			for {
				err := rows.Next(vals)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					return err
				}
				for i, v := range vals {
					out[i] = encodable(wcols[i].Oid, v)
				}
				if err := w.Row(out); err != nil {
					return err
				}
				n++
			}
			if rows.Truncated() {
				return pgerror.WithHint(pgerror.WithCode(fmt.Errorf("the result has more than %d rows (query.max_rows)", n), codes.ProgramLimitExceeded),
					"add a LIMIT, aggregate, or raise query.max_rows")
			}
			return nil
		})
		if err != nil {
			return pgError(err)
		}
		return w.Complete("SELECT " + strconv.Itoa(n))
	}
	return wire.Prepared(wire.NewStatement(run, wire.WithColumns(wcols), wire.WithParameters(oids))), nil
}

// pgError gives a query error its SQLSTATE, and its position as a hint.
func pgError(err error) error {
	var qe *query.Error
	if !errors.As(err, &qe) {
		var pe interface{ Unwrap() error }
		if errors.As(err, &pe) && pgerror.GetCode(err) != codes.Uncategorized {
			return err
		}
		return pgerror.WithCode(err, codes.Internal)
	}
	code := codes.Internal
	switch {
	case errors.Is(qe, query.ErrRefused):
		code = codes.InsufficientPrivilege
	case errors.Is(qe, query.ErrInvalid):
		code = codes.Syntax
	case errors.Is(qe, query.ErrTimeout):
		code = codes.QueryCanceled
	case errors.Is(qe, query.ErrExecution):
		code = codes.DataException
	case errors.Is(qe, query.ErrUnavailable):
		code = codes.CannotConnectNow
	}
	out := pgerror.WithCode(errors.New(qe.Error()), code)
	if qe.Line > 0 {
		out = pgerror.WithHint(out, fmt.Sprintf("at line %d, column %d of the query", qe.Line, qe.Column))
	}
	return out
}
