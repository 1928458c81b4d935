package dev.k2f.kafka;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Base64;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import org.apache.kafka.common.config.ConfigData;
import org.apache.kafka.common.config.ConfigException;
import org.apache.kafka.common.config.provider.ConfigProvider;

/**
 * Resolves {@code ${k2fsm:projects/P/secrets/S/versions/V:sasl.jaas.config}} in Kafka client settings from
 * the Kafka connection secret in Google Secret Manager, when the Kafka client is created on the worker.
 *
 * <p>The secret is the project's Kafka connection secret (docs/contracts.md, contract 2): JSON with
 * {@code apiKey} and {@code apiSecret}. The one key served is {@code sasl.jaas.config}: the SASL PLAIN
 * login built from them. The job graph therefore holds the secret's name, never the login.
 *
 * <p>Secret Manager is read through its REST API with the JDK's HTTP client (nothing to bundle): on Google
 * Cloud with the worker's service account token from the metadata server; when the environment variable
 * {@value #ENDPOINT_ENV} is set (the local stack's stand-in, e.g. http://127.0.0.1:8096), from there
 * without credentials. Errors name the secret and the problem, never a secret value.
 */
public class SecretManagerConfigProvider implements ConfigProvider {
  public static final String ENDPOINT_ENV = "SECRET_MANAGER_REST_ENDPOINT";
  public static final String JAAS_KEY = "sasl.jaas.config";
  private static final String GOOGLE_ENDPOINT = "https://secretmanager.googleapis.com";
  private static final String TOKEN_URL =
      "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token";
  private static final Duration TIMEOUT = Duration.ofSeconds(30);
  private static final ObjectMapper JSON = new ObjectMapper();

  private final HttpClient http = HttpClient.newBuilder().connectTimeout(TIMEOUT).build();
  private String endpoint = GOOGLE_ENDPOINT;

  @Override
  public void configure(Map<String, ?> configs) {
    String local = System.getenv(ENDPOINT_ENV);
    if (local != null && !local.isBlank()) {
      endpoint = local.strip().replaceAll("/+$", "");
    }
  }

  @Override
  public ConfigData get(String path) {
    return get(path, Set.of(JAAS_KEY));
  }

  @Override
  public ConfigData get(String path, Set<String> keys) {
    Map<String, String> data = new HashMap<>();
    if (path == null || path.isEmpty() || keys.isEmpty()) {
      return new ConfigData(data);
    }
    for (String key : keys) {
      if (!JAAS_KEY.equals(key)) {
        throw new ConfigException("k2fsm serves only " + JAAS_KEY + ", not " + key);
      }
    }
    JsonNode secret = parse(access(path), path);
    data.put(JAAS_KEY, plainLogin(text(secret, "apiKey", path), text(secret, "apiSecret", path)));
    return new ConfigData(data);
  }

  @Override
  public void close() {}

  /** The SASL PLAIN login module line for a user and password, quoted as JAAS requires. */
  static String plainLogin(String user, String password) {
    return "org.apache.kafka.common.security.plain.PlainLoginModule required username=\""
        + jaasEscape(user)
        + "\" password=\""
        + jaasEscape(password)
        + "\";";
  }

  private static String jaasEscape(String value) {
    return value.replace("\\", "\\\\").replace("\"", "\\\"");
  }

  private byte[] access(String name) {
    if (!name.matches("projects/[^/]+/secrets/[^/]+/versions/[^/]+")) {
      throw new ConfigException("not a secret version name (projects/P/secrets/S/versions/V): " + name);
    }
    HttpRequest.Builder request =
        HttpRequest.newBuilder(URI.create(endpoint + "/v1/" + name + ":access")).timeout(TIMEOUT);
    if (GOOGLE_ENDPOINT.equals(endpoint)) {
      request.header("Authorization", "Bearer " + metadataToken());
    }
    HttpResponse<byte[]> response = send(request.GET().build(), name);
    if (response.statusCode() != 200) {
      throw new ConfigException(
          "Secret Manager answered HTTP " + response.statusCode() + " for " + name);
    }
    JsonNode data = parse(response.body(), name).path("payload").path("data");
    if (!data.isTextual()) {
      throw new ConfigException("Secret Manager returned no payload for " + name);
    }
    return Base64.getDecoder().decode(data.asText());
  }

  private String metadataToken() {
    HttpRequest request =
        HttpRequest.newBuilder(URI.create(TOKEN_URL))
            .header("Metadata-Flavor", "Google")
            .timeout(TIMEOUT)
            .GET()
            .build();
    HttpResponse<byte[]> response = send(request, "the metadata server's token");
    if (response.statusCode() != 200) {
      throw new ConfigException("no access token from the metadata server (HTTP " + response.statusCode() + ")");
    }
    JsonNode token = parse(response.body(), "the metadata server's token").path("access_token");
    if (!token.isTextual()) {
      throw new ConfigException("no access token in the metadata server's answer");
    }
    return token.asText();
  }

  private HttpResponse<byte[]> send(HttpRequest request, String what) {
    try {
      return http.send(request, HttpResponse.BodyHandlers.ofByteArray());
    } catch (IOException e) {
      throw new ConfigException("could not reach Secret Manager for " + what + ": " + e.getClass().getSimpleName());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new ConfigException("interrupted while reading " + what);
    }
  }

  private static JsonNode parse(byte[] body, String what) {
    try {
      return JSON.readTree(body);
    } catch (IOException e) {
      // The exception's message can quote the body: the secret's bytes. Name the secret only.
      throw new ConfigException(what + " is not JSON");
    }
  }

  private static String text(JsonNode secret, String field, String name) {
    JsonNode value = secret.path(field);
    if (!value.isTextual() || value.asText().isEmpty()) {
      throw new ConfigException("the Kafka secret " + name + " has no " + field);
    }
    return value.asText();
  }
}
