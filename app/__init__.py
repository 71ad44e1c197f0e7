"""计量客户服务平台: the customer service platform of a metrology institute."""
