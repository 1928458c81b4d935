package dev.k2f.hapi;

import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.boot.autoconfigure.elasticsearch.ElasticsearchRestClientAutoConfiguration;
import org.springframework.boot.autoconfigure.orm.jpa.HibernateJpaAutoConfiguration;
import org.springframework.context.annotation.Import;

/**
 * A HAPI FHIR JPA server (R4, H2 file database) for the local stack, built only from Maven Central
 * artifacts. HAPI's own JPA configuration does the work; FhirServerConfig wires it to a servlet.
 */
@SpringBootApplication(
    exclude = {
      HibernateJpaAutoConfiguration.class,
      // HAPI brings an Elasticsearch client; nothing here uses Elasticsearch.
      ElasticsearchRestClientAutoConfiguration.class
    })
@Import(FhirServerConfig.class)
public class LocalFhirServer {
  public static void main(String[] args) {
    SpringApplication.run(LocalFhirServer.class, args);
  }
}
