// Warp Speed's embedded Iceberg REST catalog server (warpspeed.embedded.rest_catalog starts it).
// The servlet of org.apache.iceberg.rest.RESTCatalogServer (iceberg-open-api test fixtures, what the
// apache/iceberg-rest-fixture image runs), with a JdbcCatalog on the embedded PostgreSQL, but:
//  - it listens on 127.0.0.1 only, on the port the state folder recorded,
//  - every request needs "Authorization: Bearer <token>" (or Basic warpspeed:<token>); the token is the
//    state folder's catalog/rest-token (0600),
//  - /v1/oauth/tokens answers the client_credentials grant only for client_id:client_secret == warpspeed:<token>,
//  - error bodies carry type/message/code only (no Java stack), Jetty's own errors are JSON, no Server header,
//  - the catalog properties (the JDBC password among them) are never logged,
//  - the JDBC pool reconnects after a PostgreSQL restart (SQL states 57P01-57P03 are retryable).
// `make setup` compiles it into <jars_dir>/iceberg-rest-launcher (javac, against .jars/iceberg-rest/*);
// so does the first start of the catalog if the compiled classes are missing or older than this file.
// Env: WARPSPEED_REST_PORT, WARPSPEED_REST_TOKEN_FILE, WARPSPEED_REST_USER (warpspeed),
//      CATALOG_* as for the fixture (CATALOG_JDBC_PASSWORD_FILE names a file holding the password).
import jakarta.servlet.Filter;
import jakarta.servlet.FilterChain;
import jakarta.servlet.FilterConfig;
import jakarta.servlet.ServletException;
import jakarta.servlet.ServletRequest;
import jakarta.servlet.ServletResponse;
import jakarta.servlet.DispatcherType;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.Base64;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.function.Consumer;
import org.apache.hadoop.conf.Configuration;
import org.apache.iceberg.CatalogProperties;
import org.apache.iceberg.CatalogUtil;
import org.apache.iceberg.catalog.Catalog;
import org.apache.iceberg.rest.RESTCatalogAdapter;
import org.apache.iceberg.rest.RESTCatalogServlet;
import org.apache.iceberg.rest.RESTUtil;
import org.apache.iceberg.rest.responses.ErrorResponse;
import org.apache.iceberg.rest.responses.ErrorResponseParser;
import org.eclipse.jetty.http.HttpStatus;
import org.eclipse.jetty.server.HttpConfiguration;
import org.eclipse.jetty.server.HttpConnectionFactory;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.server.handler.ErrorHandler;
import org.eclipse.jetty.server.handler.gzip.GzipHandler;
import org.eclipse.jetty.servlet.FilterHolder;
import org.eclipse.jetty.servlet.ServletContextHandler;
import org.eclipse.jetty.servlet.ServletHolder;

public class WarpspeedRestCatalog {

  static String env(String name, String dflt) {
    String v = System.getenv(name);
    return v == null || v.isEmpty() ? dflt : v;
  }

  static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  static String jsonError(int code, String type, String message) {
    ErrorResponse err = ErrorResponse.builder().responseCode(code).withType(type).withMessage(message).build();
    return ErrorResponseParser.toJson(err);
  }

  /** The fixture's servlet, but error bodies without the Java stack trace. */
  static class NoStackServlet extends RESTCatalogServlet {
    NoStackServlet(RESTCatalogAdapter adapter) {
      super(adapter);
    }

    @Override
    protected Consumer<ErrorResponse> handle(HttpServletResponse response) {
      return err -> {
        response.setStatus(err.code());
        if (err.code() >= 500) {  // keep the stack server-side only
          System.err.println("catalog error " + err.code() + " " + err.type() + ": " + err.message()
              + (err.stack() == null ? "" : "\n  " + String.join("\n  ", err.stack())));
        }
        try {
          response.getWriter().write(jsonError(err.code(), err.type(), err.message()));
          // commit now: the adapter then throws RESTException and the servlet would set 500
          response.flushBuffer();
        } catch (IOException e) {
          throw new java.io.UncheckedIOException(e);
        }
      };
    }
  }

  /** Bearer/Basic check on every request; answers the OAuth2 client_credentials grant itself. */
  static class AuthFilter implements Filter {
    private final byte[] token;
    private final String user;

    AuthFilter(String user, String token) {
      this.user = user;
      this.token = utf8(token);
    }

    private boolean same(String presented) {
      return presented != null && MessageDigest.isEqual(utf8(presented), token);
    }

    private boolean authorized(String header) {
      if (header == null) return false;
      if (header.regionMatches(true, 0, "Bearer ", 0, 7)) return same(header.substring(7).trim());
      if (header.regionMatches(true, 0, "Basic ", 0, 6)) {
        try {
          String pair = new String(Base64.getDecoder().decode(header.substring(6).trim()), StandardCharsets.UTF_8);
          int colon = pair.indexOf(':');
          return colon > 0 && pair.substring(0, colon).equals(user) && same(pair.substring(colon + 1));
        } catch (IllegalArgumentException e) {
          return false;
        }
      }
      return false;
    }

    private static void send(HttpServletResponse resp, int code, String body) throws IOException {
      resp.setStatus(code);
      resp.setContentType("application/json");
      resp.setCharacterEncoding("UTF-8");
      resp.getWriter().write(body);
    }

    @Override
    public void init(FilterConfig config) {}

    @Override
    public void destroy() {}

    @Override
    public void doFilter(ServletRequest sreq, ServletResponse sresp, FilterChain chain)
        throws IOException, ServletException {
      HttpServletRequest req = (HttpServletRequest) sreq;
      HttpServletResponse resp = (HttpServletResponse) sresp;
      if ("POST".equals(req.getMethod()) && "/v1/oauth/tokens".equals(req.getRequestURI())) {
        String body = new String(req.getInputStream().readNBytes(64 * 1024), StandardCharsets.UTF_8);
        Map<String, String> form = RESTUtil.decodeFormData(body);
        String id = form.get("client_id");
        String secret = form.get("client_secret");
        String basic = req.getHeader("Authorization");
        boolean ok = "client_credentials".equals(form.get("grant_type"))
            && ((user.equals(id) && same(secret)) || authorized(basic));
        if (!ok) {
          send(resp, 401, "{\"error\":\"invalid_client\",\"error_description\":\"bad client credentials\"}");
          return;
        }
        send(resp, 200, "{\"access_token\":\"" + new String(token, StandardCharsets.UTF_8)
            + "\",\"token_type\":\"bearer\",\"issued_token_type\":\"urn:ietf:params:oauth:token-type:access_token\"}");
        return;
      }
      if (!authorized(req.getHeader("Authorization"))) {
        resp.setHeader("WWW-Authenticate", "Bearer realm=\"warpspeed\"");
        send(resp, 401, jsonError(401, "NotAuthorizedException", "Not authorized: missing or invalid credentials"));
        return;
      }
      chain.doFilter(req, resp);
    }
  }

  /** Errors Jetty itself produces (bad URI, servlet exceptions): JSON, no stack, no servlet name. */
  static class JsonErrorHandler extends ErrorHandler {
    JsonErrorHandler() {
      setShowStacks(false);
      setShowServlet(false);
      setShowMessageInTitle(false);
    }

    @Override
    public void handle(String target, Request baseRequest, HttpServletRequest request, HttpServletResponse response)
        throws IOException {
      baseRequest.setHandled(true);
      int code = response.getStatus() >= 400 ? response.getStatus() : 500;
      String reason = HttpStatus.getMessage(code);
      response.setContentType("application/json");
      response.setCharacterEncoding("UTF-8");
      byte[] body = utf8(jsonError(code, code >= 500 ? "ServerError" : "BadRequestException", reason));
      response.setContentLength(body.length);
      response.getOutputStream().write(body);
    }
  }

  static Map<String, String> catalogProperties() throws IOException {
    Map<String, String> props = new HashMap<>();
    System.getenv().forEach((k, v) -> {
      if (k.startsWith("CATALOG_")) {
        props.put(k.substring(8).replace("__", "-").replace("_", ".").toLowerCase(Locale.ROOT), v);
      }
    });
    String pwFile = props.remove("jdbc.password.file");
    if (pwFile != null) props.put("jdbc.password", Files.readString(Path.of(pwFile)).strip());
    props.putIfAbsent(CatalogProperties.CATALOG_IMPL, "org.apache.iceberg.jdbc.JdbcCatalog");
    props.putIfAbsent("jdbc.schema-version", "V1");
    // JdbcClientPool retries (reconnects) on these SQL states besides 08000/08003/08006/08007/40001:
    // admin_shutdown, crash_shutdown, cannot_connect_now (a PostgreSQL restart). Not expressible as CATALOG_* env.
    props.putIfAbsent("retryable_status_codes", "57P01,57P02,57P03");
    return props;
  }

  public static void main(String[] args) throws Exception {
    if ("1".equals(System.getenv("WARPSPEED_EXIT_WITH_PARENT"))) {
      // portable (macOS too) alternative to PR_SET_PDEATHSIG: exit when the process that started us exits
      ProcessHandle.current().parent().ifPresent(p -> p.onExit().thenRun(() -> {
        System.err.println("parent " + p.pid() + " exited; stopping");
        System.exit(0);
      }));
    }
    String host = "127.0.0.1";  // loopback only, on purpose: not configurable
    int port = Integer.parseInt(env("WARPSPEED_REST_PORT", "8181"));
    String token = Files.readString(Path.of(env("WARPSPEED_REST_TOKEN_FILE", "rest-token"))).strip();
    if (token.length() < 16) throw new IllegalStateException("token file holds fewer than 16 characters");
    String user = env("WARPSPEED_REST_USER", "warpspeed");

    Catalog catalog = CatalogUtil.buildIcebergCatalog("rest_backend", catalogProperties(), new Configuration());
    RESTCatalogAdapter adapter = new RESTCatalogAdapter(catalog);

    ServletContextHandler context = new ServletContextHandler(ServletContextHandler.NO_SESSIONS);
    context.addFilter(new FilterHolder(new AuthFilter(user, token)), "/*", EnumSet.of(DispatcherType.REQUEST));
    context.addServlet(new ServletHolder(new NoStackServlet(adapter)), "/*");
    context.insertHandler(new GzipHandler());
    context.setErrorHandler(new JsonErrorHandler());

    Server server = new Server();
    HttpConfiguration http = new HttpConfiguration();
    http.setSendServerVersion(false);
    http.setSendXPoweredBy(false);
    ServerConnector connector = new ServerConnector(server, new HttpConnectionFactory(http));
    connector.setHost(host);
    connector.setPort(port);
    server.addConnector(connector);
    server.setHandler(context);
    server.setErrorHandler(new JsonErrorHandler());
    server.setStopAtShutdown(true);
    server.start();
    System.err.println("warpspeed REST catalog listening on " + host + ":" + connector.getLocalPort());
    server.join();
  }
}
