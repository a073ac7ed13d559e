<?xml version="1.0" encoding="UTF-8"?>
<!-- 佛山市公安局 办结信息 (BJXXLB/BJXX) -> Sluice case.conclude records.
     Output contract: sx:Records / sx:Record (see adapters/xslt/xslt_adapter.h). -->
<xsl:stylesheet version="1.0"
    xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:sx="urn:sluice:xs:adapter:1"
    xmlns:case="urn:sluice:xs:case:1"
    xmlns:cm="urn:sluice:xs:common:1"
    exclude-result-prefixes="">
  <xsl:output method="xml" encoding="UTF-8"/>

  <xsl:template match="/BJXXLB">
    <sx:Records>
      <xsl:apply-templates select="BJXX"/>
    </sx:Records>
  </xsl:template>

  <xsl:template match="BJXX">
    <sx:Record doc-type="case.conclude" sender-message-id="{normalize-space(YWLSH)}">
      <case:CaseConclude>
        <case:CaseId><xsl:value-of select="normalize-space(SBLSH)"/></case:CaseId>
        <case:ItemCode><xsl:value-of select="normalize-space(SXBM)"/></case:ItemCode>
        <case:Department>
          <cm:Code><xsl:value-of select="BLBM/@dm"/></cm:Code>
          <cm:Name><xsl:value-of select="BLBM/@mc"/></cm:Name>
        </case:Department>
        <case:Region><xsl:value-of select="normalize-space(XZQHDM)"/></case:Region>
        <case:OccurredAt><xsl:value-of select="concat(normalize-space(BJSJ), '+08:00')"/></case:OccurredAt>
        <case:Result>
          <xsl:choose>
            <xsl:when test="BJJG = '1'">准予许可</xsl:when>
            <xsl:when test="BJJG = '2'">不予许可</xsl:when>
            <xsl:when test="BJJG = '3'">转报</xsl:when>
            <xsl:when test="BJJG = '4'">撤回</xsl:when>
            <xsl:otherwise>作废</xsl:otherwise>
          </xsl:choose>
        </case:Result>
        <xsl:if test="ZZ">
          <case:Certificate>
            <case:Number><xsl:value-of select="ZZ/@bh"/></case:Number>
            <case:Name><xsl:value-of select="ZZ/@mc"/></case:Name>
            <xsl:if test="ZZ/@yxq">
              <case:ValidUntil><xsl:value-of select="concat(ZZ/@yxq, 'T23:59:59+08:00')"/></case:ValidUntil>
            </xsl:if>
          </case:Certificate>
        </xsl:if>
        <case:DeliveryMode>
          <xsl:choose>
            <xsl:when test="SDFS = '1'">窗口领取</xsl:when>
            <xsl:when test="SDFS = '2'">邮政寄递</xsl:when>
            <xsl:when test="SDFS = '3'">电子送达</xsl:when>
            <xsl:otherwise>其他</xsl:otherwise>
          </xsl:choose>
        </case:DeliveryMode>
        <case:ConcludedAt><xsl:value-of select="concat(normalize-space(BJSJ), '+08:00')"/></case:ConcludedAt>
      </case:CaseConclude>
    </sx:Record>
  </xsl:template>
</xsl:stylesheet>
