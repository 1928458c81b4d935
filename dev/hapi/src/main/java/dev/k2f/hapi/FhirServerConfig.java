package dev.k2f.hapi;

import ca.uhn.fhir.batch2.jobs.config.Batch2JobsConfig;
import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.config.ThreadPoolFactoryConfig;
import ca.uhn.fhir.jpa.api.dao.IFhirSystemDao;
import ca.uhn.fhir.jpa.batch2.JpaBatch2Config;
import ca.uhn.fhir.jpa.config.HapiJpaConfig;
import ca.uhn.fhir.jpa.config.r4.JpaR4Config;
import ca.uhn.fhir.jpa.config.util.HapiEntityManagerFactoryUtil;
import ca.uhn.fhir.jpa.interceptor.validation.IRepositoryValidatingRule;
import ca.uhn.fhir.jpa.interceptor.validation.RepositoryValidatingInterceptor;
import ca.uhn.fhir.jpa.interceptor.validation.RepositoryValidatingRuleBuilder;
import ca.uhn.fhir.jpa.api.dao.DaoRegistry;
import ca.uhn.fhir.jpa.model.config.PartitionSettings;
import ca.uhn.fhir.jpa.packages.IPackageInstallerSvc;
import ca.uhn.fhir.jpa.packages.PackageInstallationSpec;
import ca.uhn.fhir.jpa.provider.IJpaSystemProvider;
import ca.uhn.fhir.jpa.provider.JpaCapabilityStatementProvider;
import ca.uhn.fhir.jpa.search.DatabaseBackedPagingProvider;
import ca.uhn.fhir.jpa.subscription.channel.config.SubscriptionChannelConfig;
import ca.uhn.fhir.rest.server.RestfulServer;
import ca.uhn.fhir.rest.server.provider.ResourceProviderFactory;
import ca.uhn.fhir.rest.server.util.ISearchParamRegistry;
import jakarta.persistence.EntityManagerFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Properties;
import javax.sql.DataSource;
import org.hl7.fhir.r4.model.Bundle;
import org.hl7.fhir.r4.model.Meta;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.beans.factory.config.ConfigurableListableBeanFactory;
import org.springframework.boot.context.event.ApplicationReadyEvent;
import org.springframework.boot.web.servlet.ServletRegistrationBean;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Import;
import org.springframework.context.annotation.Primary;
import org.springframework.context.event.EventListener;
import org.springframework.orm.jpa.JpaTransactionManager;
import org.springframework.orm.jpa.LocalContainerEntityManagerFactoryBean;

@Configuration
@Import({
  JpaR4Config.class,
  HapiJpaConfig.class,
  ThreadPoolFactoryConfig.class,
  JpaBatch2Config.class,
  Batch2JobsConfig.class,
  // batch2 (used by package installation and reindexing) runs on HAPI's in-JVM channels
  SubscriptionChannelConfig.class
})
public class FhirServerConfig {
  private static final Logger LOG = LoggerFactory.getLogger(FhirServerConfig.class);

  /** Resource types whose declared profiles are enforced when validation is on. */
  private static final List<String> VALIDATED_TYPES =
      List.of(
          "Patient",
          "Encounter",
          "Observation",
          "Condition",
          "Procedure",
          "AllergyIntolerance",
          "Immunization",
          "MedicationRequest");

  @Value("${k2f.us-core-package:}")
  private String usCorePackage;

  @Value("${k2f.validate-us-core:false}")
  private boolean validateUsCore;

  @Bean
  public JpaStorageSettings jpaStorageSettings() {
    JpaStorageSettings settings = new JpaStorageSettings();
    // Clients may PUT with their own ids; conditional updates on identifiers are the main write path.
    settings.setResourceClientIdStrategy(JpaStorageSettings.ClientIdStrategyEnum.ANY);
    settings.setAllowMultipleDelete(true);
    settings.setExpungeEnabled(true);
    // Only what the pipeline and its tests use: no full-text indexing, no subscriptions.
    settings.setHibernateSearchIndexFullText(false);
    settings.setHibernateSearchIndexSearchParams(false);
    settings.setAdvancedHSearchIndexing(false);
    // Expand value sets in memory when validating instead of in a background job at startup.
    settings.setPreExpandValueSets(false);
    return settings;
  }

  @Bean
  public PartitionSettings partitionSettings() {
    return new PartitionSettings();
  }

  @Bean
  @Primary
  public LocalContainerEntityManagerFactoryBean entityManagerFactory(
      DataSource dataSource,
      ConfigurableListableBeanFactory beanFactory,
      FhirContext fhirContext,
      JpaStorageSettings storageSettings) {
    LocalContainerEntityManagerFactoryBean factory =
        HapiEntityManagerFactoryUtil.newEntityManagerFactory(beanFactory, fhirContext, storageSettings);
    factory.setPersistenceUnitName("HAPI_PU");
    factory.setDataSource(dataSource);
    Properties jpa = new Properties();
    jpa.put("hibernate.dialect", "ca.uhn.fhir.jpa.model.dialect.HapiFhirH2Dialect");
    jpa.put("hibernate.hbm2ddl.auto", "update");
    jpa.put("hibernate.search.enabled", "false");
    jpa.put("hibernate.jdbc.batch_size", "50");
    jpa.put("hibernate.order_inserts", "true");
    jpa.put("hibernate.order_updates", "true");
    factory.setJpaProperties(jpa);
    return factory;
  }

  @Bean
  @Primary
  public JpaTransactionManager transactionManager(EntityManagerFactory entityManagerFactory) {
    return new JpaTransactionManager(entityManagerFactory);
  }

  @Bean
  public RestfulServer fhirServer(
      IFhirSystemDao<Bundle, Meta> systemDao,
      IJpaSystemProvider systemProvider,
      ResourceProviderFactory resourceProviders,
      DaoRegistry daoRegistry,
      JpaStorageSettings storageSettings,
      ISearchParamRegistry searchParamRegistry,
      IValidationSupport validationSupport,
      DatabaseBackedPagingProvider pagingProvider,
      ObjectProvider<RepositoryValidatingRuleBuilder> ruleBuilders) {
    RestfulServer server = new RestfulServer(systemDao.getContext());
    server.registerProviders(resourceProviders.createProviders());
    // The system provider executes batch and transaction bundles posted to the base URL.
    server.registerProvider(systemProvider);
    server.setServerConformanceProvider(
        new JpaCapabilityStatementProvider(server, systemDao, storageSettings, searchParamRegistry, validationSupport));
    pagingProvider.setDefaultPageSize(20);
    pagingProvider.setMaximumPageSize(1000);
    server.setPagingProvider(pagingProvider);
    server.setDefaultPrettyPrint(false);
    if (validateUsCore) {
      server.registerInterceptor(validatingInterceptor(ruleBuilders.getObject()));
      LOG.info("Validation of declared profiles is ON for {}", VALIDATED_TYPES);
    }
    return server;
  }

  /**
   * Validates at storage time, so inside a batch bundle each entry is checked on its own and an invalid
   * one fails alone with its OperationOutcome.
   */
  private RepositoryValidatingInterceptor validatingInterceptor(RepositoryValidatingRuleBuilder builder) {
    for (String type : VALIDATED_TYPES) {
      builder
          .forResourcesOfType(type)
          .requireValidationToDeclaredProfiles()
          .withBestPracticeWarningLevel("IGNORE")
          .rejectOnSeverity("error");
    }
    List<IRepositoryValidatingRule> rules = builder.build();
    RepositoryValidatingInterceptor interceptor = new RepositoryValidatingInterceptor();
    interceptor.setFhirContext(FhirContext.forR4Cached());
    interceptor.setRules(rules);
    return interceptor;
  }

  @Bean
  public ServletRegistrationBean<RestfulServer> fhirServlet(RestfulServer fhirServer) {
    ServletRegistrationBean<RestfulServer> registration = new ServletRegistrationBean<>(fhirServer, "/fhir/*");
    registration.setLoadOnStartup(1);
    return registration;
  }

  /**
   * US Core binds race and ethnicity to VSAC value sets, which the offline local stack cannot reach. A
   * small transaction of stand-ins (the OMB categories) makes those bindings checkable; PUTs by id keep it
   * idempotent.
   */
  @SuppressWarnings("unchecked")
  private void loadTerminologyStandIns(ApplicationReadyEvent event) throws Exception {
    FhirContext ctx = FhirContext.forR4Cached();
    try (var in = getClass().getResourceAsStream("/terminology/vsac-stand-ins.json")) {
      Bundle bundle = ctx.newJsonParser().parseResource(Bundle.class, in);
      IFhirSystemDao<Bundle, Meta> systemDao = event.getApplicationContext().getBean(IFhirSystemDao.class);
      systemDao.transaction(new ca.uhn.fhir.rest.api.server.SystemRequestDetails(), bundle);
    }
  }

  /** Installs US Core's conformance resources once; the installer skips what is already stored. */
  @EventListener(ApplicationReadyEvent.class)
  public void installUsCore(ApplicationReadyEvent event) throws Exception {
    if (usCorePackage.isBlank()) {
      return;
    }
    Path path = Path.of(usCorePackage);
    if (!Files.isReadable(path)) {
      throw new IllegalStateException("US Core package not readable at " + path + "; set US_CORE_PACKAGE");
    }
    IPackageInstallerSvc installer = event.getApplicationContext().getBean(IPackageInstallerSvc.class);
    PackageInstallationSpec spec =
        new PackageInstallationSpec()
            .setName("hl7.fhir.us.core")
            .setVersion("6.1.0")
            .setPackageContents(Files.readAllBytes(path))
            .setInstallMode(PackageInstallationSpec.InstallModeEnum.STORE_AND_INSTALL)
            .setFetchDependencies(false);
    long t0 = System.currentTimeMillis();
    installer.install(spec);
    loadTerminologyStandIns(event);
    LOG.info("K2F-READY US Core 6.1.0 installed in {} ms", System.currentTimeMillis() - t0);
  }
}
